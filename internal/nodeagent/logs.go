package nodeagent

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// GetContainerLogs returns a container's log for `kubectl logs`. It honours Tail,
// LimitBytes and Follow (reading until the container ended); Timestamps and the
// Since options are ignored, and there is no previous container.
func (m *podManager) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	run := m.lookup(namespace, podName)
	if run == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not running on this node", namespace, podName)
	}
	c := run.container(containerName)
	if c == nil {
		return nil, errdefs.NotFoundf("container %q is not in pod %s/%s", containerName, namespace, podName)
	}
	if opts.Previous {
		return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found: containers do not restart in the sandbox", containerName, podName)
	}
	run.mu.Lock()
	waiting := c.state.Waiting != nil
	run.mu.Unlock()
	if waiting {
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start", containerName, podName)
	}
	f, err := os.Open(c.logPath)
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, err
	}
	if opts.Tail > 0 {
		offset, err := tailOffset(f, opts.Tail)
		if err == nil {
			_, err = f.Seek(offset, io.SeekStart)
		}
		if err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	var rc io.ReadCloser = f
	if opts.Follow {
		rc = &followReader{ctx: ctx, f: f, feed: c.feed}
	}
	if opts.LimitBytes > 0 {
		rc = limitedReadCloser{Reader: io.LimitReader(rc, int64(opts.LimitBytes)), Closer: rc}
	}
	return rc, nil
}

// tailOffset returns where the last n lines of f start.
func tailOffset(f *os.File, n int) (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := info.Size()
	buf := make([]byte, 32<<10)
	if end > 0 {
		if _, err := f.ReadAt(buf[:1], end-1); err != nil {
			return 0, err
		}
		if buf[0] == '\n' {
			end-- // the last line's newline does not start another line
		}
	}
	for end > 0 {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if n--; n == 0 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// followReader reads a log file and, at its end, waits for more until the
// container ended or ctx ends.
type followReader struct {
	ctx  context.Context
	f    *os.File
	feed *logFeed
}

func (r *followReader) Read(p []byte) (int, error) {
	for {
		changed, ended := r.feed.watch()
		n, err := r.f.Read(p)
		if n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return n, err
		}
		if ended {
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, io.EOF
		}
	}
}

func (r *followReader) Close() error { return r.f.Close() }

type limitedReadCloser struct {
	io.Reader
	io.Closer
}
