// Package ingest reads orders from files — newline-delimited JSON or CSV
// with a header row — and turns each record into one queue message. Every
// record becomes a message, even a broken one, so that it is dead-lettered
// with a reason rather than silently skipped.
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
)

// Formats accepted by Read.
const (
	NDJSON = "ndjson"
	CSV    = "csv"
	Auto   = "auto"
)

// maxLine bounds one NDJSON line; a longer line becomes an over-size message
// that the pipeline dead-letters.
const maxLine = 8 << 20

// Read streams r in chunks of up to chunk messages to emit. With format
// Auto the first non-blank byte decides: '{' or '[' means NDJSON, anything
// else CSV.
func Read(r io.Reader, format string, chunk int, emit func([][]byte) error) (int, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	// A UTF-8 byte order mark would otherwise stick to the first record,
	// and that order would be dead-lettered.
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	if format == "" || format == Auto {
		format = sniff(br)
	}
	if chunk < 1 {
		chunk = 5000
	}
	switch format {
	case NDJSON:
		return readNDJSON(br, chunk, emit)
	case CSV:
		return readCSV(br, chunk, emit)
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

func readNDJSON(br *bufio.Reader, chunk int, emit func([][]byte) error) (int, error) {
	total := 0
	batch := make([][]byte, 0, chunk)
	for {
		line, err := readLine(br)
		if len(bytes.TrimSpace(line)) > 0 {
			batch = append(batch, bytes.TrimSpace(line))
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

// readLine returns one line without its newline; a line longer than maxLine
// is truncated (and so dead-lettered as malformed) rather than held whole.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, isPrefix, err := br.ReadLine()
		if len(line) < maxLine {
			line = append(line, part...)
		}
		if err != nil || !isPrefix {
			return line, err
		}
	}
}

// numeric fields are passed as JSON numbers when they parse as such, so a
// CSV row becomes the same message a JSON producer would send.
var numeric = map[string]bool{"quantity": true, "unit_price": true}

func readCSV(br *bufio.Reader, chunk int, emit func([][]byte) error) (int, error) {
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
		case errors.As(err, &parseErr):
			// An unparseable record still becomes a message, so that it is
			// dead-lettered with its line number rather than lost.
			msg = []byte(fmt.Sprintf("csv error: %v", err))
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
