package deploy_test

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// instruction is one Dockerfile instruction: its keyword (upper case), its flags
// (--from=..., --mount=...) and the rest of its line, continuations joined.
type instruction struct {
	Cmd   string
	Flags []string
	Args  string
}

// parseDockerfile reads a Dockerfile's instructions: comments and parser
// directives dropped, lines ending in a backslash joined.
func parseDockerfile(t *testing.T, file string) []instruction {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var out []instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, rest, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd)}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			in.Flags = append(in.Flags, flag)
			rest = strings.TrimSpace(rest)
		}
		in.Args = rest
		out = append(out, in)
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if before, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(before + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

// dockerfileBinaries returns the paths of the binaries the final image holds: the
// packages the build stage compiles into its -o folder, copied by the final stage.
func dockerfileBinaries(t *testing.T) []string {
	t.Helper()
	st := stages(parseDockerfile(t, filepath.Join(testenv.RepoRoot(), "Dockerfile")))
	require.GreaterOrEqual(t, len(st), 2, "multi-stage")
	build := st[0]
	buildName := ""
	if f := strings.Fields(build[0].Args); len(f) == 3 && strings.EqualFold(f[1], "AS") {
		buildName = f[2]
	}
	require.NotEmpty(t, buildName, "the build stage is named: %q", build[0].Args)

	var outDir string
	var pkgs []string
	for _, in := range build {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		assert.Regexp(t, `(^|\s)CGO_ENABLED=0\s`, in.Args, "static binaries")
		f := strings.Fields(in.Args[strings.Index(in.Args, "go build"):])
		for i, a := range f {
			if a == "-o" && i+1 < len(f) {
				outDir = f[i+1]
			}
			if strings.HasPrefix(a, "./cmd/") {
				pkgs = append(pkgs, path.Base(a))
			}
		}
	}
	require.True(t, strings.HasSuffix(outDir, "/"), "go build -o <folder>/ builds each package into the folder: %q", outDir)
	require.NotEmpty(t, pkgs)

	final := st[len(st)-1]
	var binaries []string
	var user string
	for _, in := range final {
		switch in.Cmd {
		case "COPY":
			if !contains(in.Flags, "--from="+buildName) {
				continue
			}
			f := strings.Fields(in.Args)
			require.Len(t, f, 2, "COPY --from=%s <src> <dest>", buildName)
			if f[0] == outDir {
				for _, p := range pkgs {
					binaries = append(binaries, path.Join(f[1], p))
				}
			}
		case "USER":
			user = in.Args
		}
	}
	require.NotEmpty(t, user, "the final stage sets USER")
	uid, _, _ := strings.Cut(user, ":")
	assert.NotContains(t, []string{"0", "root"}, uid, "non-root USER")
	assert.Regexp(t, `^(gcr\.io/distroless/static[^ ]*:nonroot|scratch)$`, final[0].Args, "a static base image for non-root users")
	return binaries
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDockerfileBuildsTheFourServicesStaticallyForANonRootUser parses the
// Dockerfile: a multi-stage build of static (CGO_ENABLED=0) binaries of the four
// services into a distroless image with a non-root USER.
func TestDockerfileBuildsTheFourServicesStaticallyForANonRootUser(t *testing.T) {
	binaries := dockerfileBinaries(t)
	for _, svc := range services {
		assert.Contains(t, binaries, "/usr/local/bin/"+svc)
		_, err := os.Stat(filepath.Join(testenv.RepoRoot(), "cmd", svc, "main.go"))
		assert.NoError(t, err, "cmd/%s is a service", svc)
	}

	// The build context holds what the build copies.
	ignore, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), ".dockerignore"))
	require.NoError(t, err)
	for _, kept := range []string{"!go.mod", "!go.sum", "!cmd/", "!internal/"} {
		assert.Contains(t, strings.Fields(string(ignore)), kept)
	}
	for _, in := range parseDockerfile(t, filepath.Join(testenv.RepoRoot(), "Dockerfile")) {
		if in.Cmd == "COPY" && len(in.Flags) == 0 {
			for _, src := range strings.Fields(in.Args)[:len(strings.Fields(in.Args))-1] {
				_, err := os.Stat(filepath.Join(testenv.RepoRoot(), src))
				assert.NoError(t, err, "COPY %s", src)
			}
		}
	}

	// make images builds it.
	mk, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Makefile"))
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`(?m)^images:.*\n\t\$\(CONTAINER_TOOL\) build -t \$\(IMAGE\) \.$`), string(mk))
}

// TestComposeRunsNATSAndTheFourServicesAgainstAMountedKubeconfig parses
// docker-compose.yaml: NATS with JetStream, and the four services built from the
// Dockerfile, reading a kubeconfig mounted from the host.
func TestComposeRunsNATSAndTheFourServicesAgainstAMountedKubeconfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docker-compose.yaml"))
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Image string
			Build struct {
				Context    string
				Dockerfile string
			}
			Command     []string
			Environment map[string]string
			Volumes     []string
			DependsOn   []string `json:"depends_on"`
			User        string
		}
	}
	// sigs.k8s.io/yaml resolves the anchors and merge keys (<<) that compose
	// allows, as compose does.
	require.NoError(t, yaml.Unmarshal(b, &compose))

	names := sortedKeys(compose.Services)
	assert.Equal(t, []string{"actions", "dispatcher", "nats", "scheduler", "watcher"}, names)

	nats := compose.Services["nats"]
	assert.Regexp(t, `^nats:2\.`, nats.Image)
	assert.Contains(t, nats.Command, "-js", "JetStream")

	built := dockerfileBinaries(t)
	for _, svc := range services {
		s := compose.Services[svc]
		assert.Equal(t, ".", s.Build.Context, svc)
		assert.Equal(t, "Dockerfile", s.Build.Dockerfile, svc)
		_, err := os.Stat(filepath.Join(testenv.RepoRoot(), s.Build.Context, s.Build.Dockerfile))
		assert.NoError(t, err)
		require.NotEmpty(t, s.Command, svc)
		assert.Equal(t, "/usr/local/bin/"+svc, s.Command[0])
		assert.Contains(t, built, s.Command[0], "the image holds what %s runs", svc)
		assert.Contains(t, s.DependsOn, "nats")
		assert.Equal(t, "nats://nats:4222", s.Environment["ORCA_NATS_URL"])

		// The kubeconfig: mounted read-only from the host, where the service reads it.
		var mounted string
		for _, v := range s.Volumes {
			// <host path>:<container path>:ro, where the host path may hold
			// ${VAR:-default} with colons of its own.
			parts := strings.Split(v, ":")
			if len(parts) >= 3 && strings.Contains(v, ".kube/config") {
				assert.Equal(t, "ro", parts[len(parts)-1], v)
				mounted = parts[len(parts)-2]
			}
		}
		require.NotEmpty(t, mounted, "%s mounts a kubeconfig: %v", svc, s.Volumes)
		assert.Equal(t, mounted, s.Environment["KUBECONFIG"])
		i := indexOf(s.Command, "--kubeconfig")
		require.GreaterOrEqual(t, i, 0, svc)
		assert.Equal(t, mounted, s.Command[i+1])
		assert.NotEmpty(t, s.User, "runs as a user who can read the kubeconfig")
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
