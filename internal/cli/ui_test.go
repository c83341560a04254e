package cli_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// TestUIServesTheNamespaceBehindAToken runs `orca ui` as a user would and
// checks what it prints; the page itself is tested in test/ui.
func TestUIServesTheNamespaceBehindAToken(t *testing.T) {
	ns := env.Namespace(t)
	srv, _ := testenv.NATS(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"orca", "ui", "-n", ns, "--kubeconfig", env.KubeconfigPath, "--nats-url", srv.URL(), "--address", "127.0.0.1:0"},
			nil, &bytes.Buffer{}, &stderr)
	}()
	re := regexp.MustCompile(`Orca's web view of namespace ` + ns + `: http://127\.0\.0\.1:\d+/\?token=[A-Z0-9]{26}\n`)
	waitFor(t, "the address is printed", func() bool { return re.MatchString(stderr.String()) })
	cancel()
	assert.Equal(t, 0, <-done, stderr.String())
}

func TestUIRefusesAnOpenDoor(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--address", "0.0.0.0:0"}, 2, `listens on the loopback interface only (127.0.0.1, ::1 or localhost), not "0.0.0.0:0": pass --allow-remote`},
		{[]string{"--address", "127.0.0.1:0", "--history", "0s"}, 2, "--history must be positive"},
		{[]string{"--address", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:1", "--timeout", "200ms"}, 1, "cannot reach NATS at nats://127.0.0.1:1"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"orca", "ui", "-n", "default", "--kubeconfig", env.KubeconfigPath}, tt.args...)
		code := cli.Main(t.Context(), args, nil, &bytes.Buffer{}, &stderr)
		assert.Equal(t, tt.code, code, "%v: %s", tt.args, stderr.String())
		require.Contains(t, stderr.String(), tt.want, "%v", tt.args)
	}
}
