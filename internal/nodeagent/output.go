package nodeagent

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// maxLine is the longest line copied to Options.Output in one piece.
const maxLine = 64 << 10

// outputSink serializes the prefixed lines of all containers into Options.Output.
type outputSink struct {
	mu sync.Mutex
	w  io.Writer
}

func newOutputSink(w io.Writer) *outputSink {
	if w == nil {
		return nil
	}
	return &outputSink{w: w}
}

func (s *outputSink) writeLine(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(line)
}

// lineWriter cuts a container's output into lines and writes each line to the
// sink with a prefix. A nil lineWriter discards.
type lineWriter struct {
	sink    *outputSink
	prefix  string
	partial []byte
}

func newLineWriter(sink *outputSink, prefix string) *lineWriter {
	if sink == nil {
		return nil
	}
	return &lineWriter{sink: sink, prefix: prefix}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if w == nil {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			if len(w.partial) >= maxLine {
				w.emit(w.partial)
				w.partial = w.partial[:0]
			}
			return len(p), nil
		}
		w.emit(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

// Flush writes the last line when it has no newline.
func (w *lineWriter) Flush() {
	if w == nil || len(w.partial) == 0 {
		return
	}
	w.emit(w.partial)
	w.partial = nil
}

func (w *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(append(append(out, w.prefix...), line...), '\n')
	w.sink.writeLine(out)
}

// logFeed tells followers of a container's log that it grew or ended.
type logFeed struct {
	mu      sync.Mutex
	changed chan struct{}
	ended   bool
}

func newLogFeed() *logFeed { return &logFeed{changed: make(chan struct{})} }

// watch returns a channel that is closed at the next change, and whether the log
// has ended: a reader that then reads to the end has read everything.
func (f *logFeed) watch() (<-chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed, f.ended
}

func (f *logFeed) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

func (f *logFeed) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		f.ended = true
		close(f.changed)
	}
}

// copyOutput copies a container's output from the pipe r into its log file and
// the line writer until r ends, then closes r and the log, and ends the feed.
func copyOutput(r io.ReadCloser, logFile *os.File, lines *lineWriter, feed *logFeed) {
	defer feed.end()
	defer logFile.Close()
	defer r.Close()
	defer lines.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = logFile.Write(buf[:n])
			_, _ = lines.Write(buf[:n])
			feed.notify()
		}
		if err != nil {
			return
		}
	}
}
