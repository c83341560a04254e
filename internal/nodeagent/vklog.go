package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-logr/logr"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
)

// vkLogger routes virtual-kubelet's log into a logr.Logger, so that it is quiet
// at the default level: errors stay errors, except those caused by the agent
// stopping; these, warnings and informational messages go to V(1), and debug
// messages to V(2).
type vkLogger struct {
	l   logr.Logger
	err error
}

var _ vklog.Logger = vkLogger{}

func newVKLogger(l logr.Logger) vkLogger {
	return vkLogger{l: l.WithName("virtual-kubelet")}
}

func (v vkLogger) info(level int, msg string) {
	l := v.l.V(level)
	if v.err != nil {
		l = l.WithValues("error", v.err.Error())
	}
	l.Info(msg)
}

// error logs an error, except one caused by the agent stopping, which is
// informational.
func (v vkLogger) error(msg string) {
	if errors.Is(v.err, context.Canceled) {
		v.info(1, msg)
		return
	}
	v.l.Error(v.err, msg)
}

func (v vkLogger) Debug(args ...any)                { v.info(2, fmt.Sprint(args...)) }
func (v vkLogger) Debugf(f string, args ...any)     { v.info(2, fmt.Sprintf(f, args...)) }
func (v vkLogger) Info(args ...any)                 { v.info(1, fmt.Sprint(args...)) }
func (v vkLogger) Infof(f string, args ...any)      { v.info(1, fmt.Sprintf(f, args...)) }
func (v vkLogger) Warn(args ...any)                 { v.info(1, fmt.Sprint(args...)) }
func (v vkLogger) Warnf(f string, args ...any)      { v.info(1, fmt.Sprintf(f, args...)) }
func (v vkLogger) Error(args ...any)                { v.l.Error(v.err, fmt.Sprint(args...)) }
func (v vkLogger) Errorf(f string, args ...any)     { v.l.Error(v.err, fmt.Sprintf(f, args...)) }
func (v vkLogger) Fatal(args ...any)                { v.Error(args...) }
func (v vkLogger) Fatalf(f string, args ...any)     { v.Errorf(f, args...) }
func (v vkLogger) WithError(err error) vklog.Logger { v.err = err; return v }

func (v vkLogger) WithField(key string, value any) vklog.Logger {
	v.l = v.l.WithValues(key, value)
	return v
}

func (v vkLogger) WithFields(fields vklog.Fields) vklog.Logger {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]any, 0, 2*len(fields))
	for _, k := range keys {
		kv = append(kv, k, fields[k])
	}
	v.l = v.l.WithValues(kv...)
	return v
}
