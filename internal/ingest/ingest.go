// Package ingest reads orders from files — newline-delimited JSON or CSV
// with a header row — and turns each record into one queue message. Every
// record becomes a message, even a broken one, so that it is dead-lettered
// with a reason rather than silently skipped. The one exception is a CSV
// quote left open over several lines: Read stops there with a
// *RecordError, since what follows cannot be told apart into records.
package ingest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/redpg/redpg/internal/order"
)

// Formats accepted by Read.
const (
	NDJSON = "ndjson"
	CSV    = "csv"
	Auto   = "auto"
)

// DefaultChunk is how many messages Read hands to emit at a time.
const DefaultChunk = 5000

// Config says how Read reads.
type Config struct {
	// Format is NDJSON, CSV or Auto. Defaults to Auto: the first non-blank
	// byte decides, '{' or '[' meaning NDJSON and anything else CSV.
	Format string
	// Chunk is the most messages one emit call carries. Defaults to
	// DefaultChunk.
	Chunk int
	// MaxBytes is the message size cap (order.Options.MaxBytes). A record
	// over it is queued as an oversized mark holding its size and first
	// order.KeptPrefixBytes, which is dead-lettered as payload_too_large;
	// an NDJSON line is never held whole beyond it. Defaults to
	// order.DefaultMaxBytes.
	MaxBytes int
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Format == "" {
		c.Format = Auto
	}
	if c.Chunk < 1 {
		c.Chunk = DefaultChunk
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = order.DefaultMaxBytes
	}
	return c
}

// RecordError stops Read at a CSV record whose open quote ran over later
// lines. The records before it were all emitted.
type RecordError struct {
	// Line is the line the bad record starts on, counting the header as 1.
	Line int
	// Queued is how many records were emitted before it.
	Queued int
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("CSV record starting at line %d: %v; stopped there, the %d records before it were queued and nothing from line %d on",
		e.Line, e.Err, e.Queued, e.Line)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Read streams r to emit in chunks and returns how many messages it
// emitted.
func Read(r io.Reader, cfg Config, emit func([][]byte) error) (int, error) {
	cfg = cfg.WithDefaults()
	br := bufio.NewReaderSize(r, 1<<16)
	// A UTF-8 byte order mark would otherwise stick to the first record,
	// and that order would be dead-lettered.
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	format := cfg.Format
	if format == Auto {
		format = sniff(br)
	}
	switch format {
	case NDJSON:
		return readNDJSON(br, cfg, emit)
	case CSV:
		return readCSV(br, cfg, emit)
	}
	return 0, fmt.Errorf("unknown format %q: use ndjson, csv or auto", format)
}

func sniff(br *bufio.Reader) string {
	for n := 1; n <= 4096; n++ {
		b, err := br.Peek(n)
		if len(b) < n || err != nil {
			break
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF: // whitespace, UTF-8 BOM
			continue
		case '{', '[':
			return NDJSON
		default:
			return CSV
		}
	}
	return NDJSON
}

func readNDJSON(br *bufio.Reader, cfg Config, emit func([][]byte) error) (int, error) {
	chunk := cfg.Chunk
	total := 0
	batch := make([][]byte, 0, chunk)
	for {
		line, size, err := readLine(br, cfg.MaxBytes)
		if size > cfg.MaxBytes {
			line = order.OversizedMark(size, line)
		} else {
			line = bytes.TrimSpace(line)
		}
		if len(line) > 0 {
			batch = append(batch, line)
			if len(batch) == chunk {
				if err := emit(batch); err != nil {
					return total, err
				}
				total += len(batch)
				batch = make([][]byte, 0, chunk)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
	}
	if len(batch) > 0 {
		if err := emit(batch); err != nil {
			return total, err
		}
		total += len(batch)
	}
	return total, nil
}

// readLine returns one line without its newline, and its length. Of a line
// longer than limit only the first order.KeptPrefixBytes are returned:
// the rest is read and counted, never held.
func readLine(br *bufio.Reader, limit int) ([]byte, int, error) {
	var line []byte
	size := 0
	for {
		part, isPrefix, err := br.ReadLine()
		size += len(part)
		switch {
		case size <= limit:
			line = append(line, part...)
		case len(line) > order.KeptPrefixBytes:
			line = line[:order.KeptPrefixBytes:order.KeptPrefixBytes]
		case len(line) < order.KeptPrefixBytes:
			line = append(line, part[:min(len(part), order.KeptPrefixBytes-len(line))]...)
		}
		if err != nil || !isPrefix {
			return line, size, err
		}
	}
}

// numeric fields are passed as JSON numbers when they parse as such, so a
// CSV row becomes the same message a JSON producer would send.
var numeric = map[string]bool{"quantity": true, "unit_price": true}

func readCSV(br *bufio.Reader, cfg Config, emit func([][]byte) error) (int, error) {
	chunk := cfg.Chunk
	bound := order.Options{MaxBytes: cfg.MaxBytes}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("read CSV header: %w", err)
	}
	cols := make([]string, len(header))
	for i, h := range header {
		cols[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	total := 0
	batch := make([][]byte, 0, chunk)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var msg []byte
		var parseErr *csv.ParseError
		switch {
		case errors.As(err, &parseErr) && parseErr.Line == parseErr.StartLine:
			// A record broken within its own line (a stray quote): the
			// reader carries on at the next line, so the record still
			// becomes a message and is dead-lettered with its line number.
			msg = []byte(fmt.Sprintf("csv error: %v", err))
		case errors.As(err, &parseErr):
			// A quote left open ran on over later lines (to the end of the
			// file, if it is never closed): what the reader read is no
			// record, and nothing after it can be trusted to be one. Queue
			// what came before and stop, rather than fold the rest of the
			// file into one dead letter.
			if len(batch) > 0 {
				if err := emit(batch); err != nil {
					return total, err
				}
				total += len(batch)
			}
			return total, &RecordError{Line: parseErr.StartLine, Queued: total, Err: parseErr.Err}
		case err != nil:
			// A failing reader is not a record: it may fail forever.
			return total, fmt.Errorf("read CSV: %w", err)
		default:
			obj := make(map[string]any, len(rec))
			for i, v := range rec {
				if i >= len(cols) || cols[i] == "" {
					continue
				}
				if numeric[cols[i]] && json.Valid([]byte(v)) {
					obj[cols[i]] = json.RawMessage(v)
				} else {
					obj[cols[i]] = v
				}
			}
			if msg, err = json.Marshal(obj); err != nil {
				msg = []byte(fmt.Sprintf("csv error: %v", err))
			}
			msg = bound.Bounded(msg)
		}
		batch = append(batch, msg)
		if len(batch) == chunk {
			if err := emit(batch); err != nil {
				return total, err
			}
			total += len(batch)
			batch = make([][]byte, 0, chunk)
		}
	}
	if len(batch) > 0 {
		if err := emit(batch); err != nil {
			return total, err
		}
		total += len(batch)
	}
	return total, nil
}
