package bus_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestScopes(t *testing.T) {
	assert.Equal(t, []string{"orca.ignited.>", "orca.task.failed.>"},
		bus.ScopedSubjects(nil, bus.SubjectIgnited, bus.SubjectTaskFailed))
	assert.Equal(t, []string{"orca.ignited.a.>", "orca.ignited.b.>"},
		bus.ScopedSubjects([]string{"a", "b"}, bus.SubjectIgnited))

	assert.Equal(t, "orca-dispatcher", bus.ScopedConsumerName("orca-dispatcher", nil))
	ab := bus.ScopedConsumerName("orca-dispatcher", []string{"a", "b"})
	assert.Regexp(t, `^orca-dispatcher-[0-9a-f]{8}$`, ab)
	assert.Equal(t, ab, bus.ScopedConsumerName("orca-dispatcher", []string{"b", "a", "a"}), "the order of the scope does not matter")
	assert.NotEqual(t, ab, bus.ScopedConsumerName("orca-dispatcher", []string{"a"}))
}
