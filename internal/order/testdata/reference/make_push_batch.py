"""Writes push_batch.txt: the exact bytes the Python reference's
RedisQueue.push_batch LPUSHes (json.dumps of each order dict, default
separators, ensure_ascii) for orders shaped as its data_generator.py builds
them, with the timestamp spellings Python producers write. Run it with any
Python 3 to regenerate; the Go test only reads the output, so CI needs no
Python. One message per line (json.dumps never writes a raw newline)."""

import json
from datetime import datetime, timezone, timedelta

naive = datetime(2026, 12, 2, 10, 11, 12, 123456)
ist = timezone(timedelta(hours=5, minutes=30))


def order(n, ts, **over):
    o = {
        'order_id': f"ORD-{n:012X}",
        'customer_id': f"CUST-{n:012X}",
        'product_id': 'PROD-001',
        'quantity': 3,
        'unit_price': 1299.99,
        'currency': 'USD',
        'zip_code': '10001',
        'order_timestamp': ts,
        'raw_data': {
            'user_agent': 'Mozilla/5.0 (Windows NT 5.1; sl-SI; rv:1.9.1.20) Gecko/2013-06-18 12:57:39 Firefox/3.6.7',
            'ip_address': '192.0.2.44',
            'session_id': 'c2f7e2d4-5b7a-4d0e-9a51-0d7f4f7f1c11',
        },
    }
    o.update(over)
    return o


jobs = [
    order(1, naive.isoformat()),                                   # data_generator: datetime.now().isoformat()
    order(2, naive.replace(microsecond=0).isoformat()),            # isoformat drops a zero fraction
    order(3, naive.replace(tzinfo=timezone.utc).isoformat()),      # +00:00
    order(4, naive.replace(tzinfo=ist).isoformat()),               # +05:30
    order(5, naive.strftime('%Y-%m-%d %H:%M:%S') + '+0000'),       # %z
    order(6, naive.replace(tzinfo=ist).strftime('%Y-%m-%dT%H:%M:%S.%f%z')),  # %z, +0530
    order(7, naive.replace(tzinfo=timezone.utc).strftime('%Y-%m-%d %H:%M:%S %Z')),  # %Z: " UTC"
    order(8, naive.replace(tzinfo=ist).strftime('%Y-%m-%d %H:%M:%S %Z')),  # %Z: " UTC+05:30"
    order(9, naive.strftime('%Y-%m-%dT%H:%M:%S.%fZ')),             # Z
    order(10, naive.isoformat(), unit_price=29.7, quantity=1, currency='CAD', zip_code='M5H2N2'),
    order(11, naive.isoformat(), unit_price=1300.0, currency='JPY'),
    order(12, naive.isoformat(), customer_id=42),                  # an integer id
    order(13, naive.isoformat(), raw_data={'user_agent': 'Opera/8.92.(X11; Linux i686; ta-IN) Presto/2.9.181 Version/12.00',
                                            'ip_address': '2001:db8::1', 'session_id': 'caf\u00e9'}),
    order(14, naive.isoformat(), raw_data={}),
    order(15, naive.isoformat(), customer_id=4.5),                 # wrong_type
    order(16, naive.strftime('%Y-%m-%d %H:%M:%S') + ' EST'),       # ambiguous zone name: bad_timestamp
    order(17, naive.isoformat(), quantity=None),                   # missing_field
]

with open('push_batch.txt', 'w') as f:
    for j in jobs:
        f.write(json.dumps(j) + '\n')
