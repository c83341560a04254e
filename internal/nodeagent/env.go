package nodeagent

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// defaultPath is the PATH of a container that sets none, as in most images.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// containerEnv returns the environment of container c: its env (virtual-kubelet
// has already resolved valueFrom and envFrom into it), plus HOSTNAME, PATH and HOME
// when the container does not set them. The agent's own environment is not passed.
func containerEnv(hostname string, c *corev1.Container) []string {
	seen := make(map[string]bool, len(c.Env)+3)
	env := make([]string, 0, len(c.Env)+3)
	for _, e := range c.Env {
		if seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		env = append(env, e.Name+"="+e.Value)
	}
	for _, d := range [][2]string{{"HOSTNAME", hostname}, {"PATH", defaultPath}, {"HOME", "/root"}} {
		if !seen[d[0]] {
			env = append(env, d[0]+"="+d[1])
		}
	}
	return env
}

// envValue returns the value of name in env, a list of KEY=value.
func envValue(env []string, name string) (string, bool) {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// commandLine returns the container's command and args with $(VAR) references
// expanded from its env, as the kubelet expands them.
func commandLine(c *corev1.Container) []string {
	vars := make(map[string]string, len(c.Env))
	for _, e := range c.Env {
		if _, ok := vars[e.Name]; !ok {
			vars[e.Name] = e.Value
		}
	}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	argv := make([]string, 0, len(c.Command)+len(c.Args))
	for _, s := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, expandVars(s, lookup))
	}
	return argv
}

// expandVars replaces $(NAME) in s with NAME's value when lookup knows NAME and
// leaves the reference as it is otherwise; $$ is an escaped $.
func expandVars(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			ref := s[i : i+3+end]
			if v, ok := lookup(s[i+2 : i+2+end]); ok {
				b.WriteString(v)
			} else {
				b.WriteString(ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
