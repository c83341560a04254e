package nodeagent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "x", "EMPTY": ""}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	for in, want := range map[string]string{
		"":              "",
		"plain":         "plain",
		"$(A)":          "x",
		"a$(A)b$(A)":    "axbx",
		"$(EMPTY)-":     "-",
		"$(MISSING)":    "$(MISSING)",
		"$$(A)":         "$(A)",
		"$$":            "$",
		"$A":            "$A",
		"$(A":           "$(A",
		"end$":          "end$",
		"$()":           "$()",
		"$(A)$$(A)$(A)": "x$(A)x",
	} {
		assert.Equal(t, want, expandVars(in, lookup), in)
	}
}

func TestContainerEnvDefaults(t *testing.T) {
	env := containerEnv("pod", &corev1.Container{Env: []corev1.EnvVar{{Name: "HOME", Value: "/home/x"}, {Name: "A", Value: "1"}}})
	assert.Equal(t, []string{"HOME=/home/x", "A=1", "HOSTNAME=pod", "PATH=" + defaultPath}, env)
}

func TestLastLines(t *testing.T) {
	assert.Equal(t, "b\nc\n", string(lastLines([]byte("a\nb\nc\n"), 2)))
	assert.Equal(t, "b\nc", string(lastLines([]byte("a\nb\nc"), 2)))
	assert.Equal(t, "a\nb\n", string(lastLines([]byte("a\nb\n"), 5)))
}
