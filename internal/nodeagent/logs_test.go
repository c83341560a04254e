package nodeagent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKubectlLogs(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("logs",
		shell("one", "for i in 1 2 3 4 5; do echo $i; done"),
		shell("two", "echo two >&2"),
	))
	h.waitEnded(t, "logs")

	assert.Equal(t, "1\n2\n3\n4\n5\n", h.kubectl(t, "logs", "logs", "-c", "one"))
	assert.Equal(t, "4\n5\n", h.kubectl(t, "logs", "logs", "-c", "one", "--tail=2"))
	assert.Equal(t, "1\n2\n", h.kubectl(t, "logs", "logs", "-c", "one", "--limit-bytes=4"))
	assert.Equal(t, "two\n", h.kubectl(t, "logs", "logs", "-c", "two"))
}

func TestKubectlLogsFollow(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("follow", shell("main", "echo a; sleep 2; echo b")))
	h.waitRunning(t, "follow")

	// Returns only when the container ended, with everything it printed.
	assert.Equal(t, "a\nb\n", h.kubectl(t, "logs", "-f", "follow"))
}
