package nodeagent_test

import (
	"os"
	"testing"

	"github.com/sirocco-cloud/orca/internal/nodeagent"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// env is the control plane that the package's tests share; no scheduler runs, so
// the tests bind Pods to their agent's Node themselves.
var env *testenv.Env

func TestMain(m *testing.M) {
	nodeagent.RunContainerIfChild()
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}
