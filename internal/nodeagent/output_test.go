package nodeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailOffset(t *testing.T) {
	for _, tc := range []struct {
		data string
		n    int
		want string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 5, "a\nb\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"", 3, ""},
		{"\n\n", 1, "\n"},
	} {
		path := filepath.Join(t.TempDir(), "log")
		require.NoError(t, os.WriteFile(path, []byte(tc.data), 0o644))
		f, err := os.Open(path)
		require.NoError(t, err)
		offset, err := tailOffset(f, tc.n)
		require.NoError(t, err)
		assert.Equal(t, tc.want, tc.data[offset:], "%q tail %d", tc.data, tc.n)
		require.NoError(t, f.Close())
	}
}

func TestLineWriterPrefixesLines(t *testing.T) {
	var out bytes.Buffer
	w := newLineWriter(newOutputSink(&out), "ns/pod/c: ")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\nthree"))
	w.Flush()
	assert.Equal(t, "ns/pod/c: one\nns/pod/c: two\nns/pod/c: three\n", out.String())
}
