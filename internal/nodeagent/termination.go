package nodeagent

import (
	"bytes"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// Limits of termination messages, as in the kubelet.
const (
	maxMessageBytes    = 4 << 10
	maxLogMessageLines = 80
	maxLogMessageBytes = 2 << 10
)

// terminationMessage returns a container's termination message as the kubelet
// builds it: the end of the termination message file (at most 4096 bytes), or,
// when that is empty, the container failed and its policy is
// FallbackToLogsOnError, the last 80 lines of its log (at most 2048 bytes).
func terminationMessage(c *corev1.Container, messageFile, logFile string, exitCode int) string {
	msg := readEnd(messageFile, maxMessageBytes)
	if len(msg) == 0 && exitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		// The last 80 lines cut to their last 2048 bytes lie in the log's last
		// 2048 bytes.
		msg = lastLines(readEnd(logFile, maxLogMessageBytes), maxLogMessageLines)
	}
	return string(msg)
}

// readEnd returns the last limit bytes of the file, or nothing when it cannot be
// read.
func readEnd(path string, limit int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil
	}
	offset := max(info.Size()-limit, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, offset, info.Size()-offset))
	if err != nil {
		return nil
	}
	return data
}

// lastLines returns the last n lines of data.
func lastLines(data []byte, n int) []byte {
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(data[:end], '\n')
		if j < 0 {
			return data
		}
		if i == n-1 {
			return data[j+1:]
		}
		end = j
	}
	return data
}
