package cli_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/cli"
)

// TestGraphOfTheSeedWorkflow reads the seed from the API server and prints it in
// both formats, through the command line.
func TestGraphOfTheSeedWorkflow(t *testing.T) {
	ns := env.Namespace(t)
	applyFile(t, ns, "seed-tasks.yaml")
	applyFile(t, ns, "seed-ignitor.yaml")
	for _, format := range []string{"mermaid", "dot"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main(t.Context(), []string{"orca", "graph", "-n", ns, "--kubeconfig", env.KubeconfigPath, "--format", format},
				nil, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.Empty(t, stderr.String())
			golden(t, "seed."+format, stdout.String())
		})
	}
}

func TestGraphErrorsNameTheNamespaceAndTheFix(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"orca", "graph", "--format", "png", "-n", "x", "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `unknown --format "png"`)

	ns := env.Namespace(t)
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(context.Background(), []string{"orca", "graph", "-n", ns, "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "namespace "+ns+" has no Tasks and no Ignitors")
	assert.Equal(t, "flowchart LR\n", stdout.String())
}
