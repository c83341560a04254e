// Package cli is Orca's command line for people: `orca run` runs the four services
// in one process (with --sandbox in a local cluster it starts, with --apply after
// applying manifests), `orca fire` fires an ignition, `orca events` follows Orca's
// events, `orca deadletters` lists and replays dead letters, `orca graph` draws the
// workflow of a namespace and `orca ui` serves the web view (package ui). The binary
// works the same when named kubectl-orca, as a kubectl plugin (`kubectl orca ...`).
//
// Each command is a function taking an options struct and io.Writers, so that it
// can be tested without a process; Main parses the arguments into them.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// command is one subcommand of Main.
type command struct {
	name, summary string
	run           func(ctx context.Context, c *cmdEnv, args []string) error
}

// cmdEnv is what a subcommand gets from Main.
type cmdEnv struct {
	prog           string // "orca" or "kubectl orca"
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"run", "run the scheduler, dispatcher, watcher and actions in one process (--sandbox: in a local cluster)", runCmd},
		{"fire", "fire an ignition: the Tasks that start on it run", fireCmd},
		{"events", "follow Orca's events live, one line each", eventsCmd},
		{"deadletters", "list the dead letters with their reasons; 'deadletters replay' publishes them again", deadLettersCmd},
		{"graph", "print the workflow graph of a namespace (mermaid or dot)", graphCmd},
		{"ui", "serve the web view: the workflow live, its runs, fire an ignition", uiCmd},
	}
}

// errUsage marks an error in the command line: Main exits with 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return errUsage{fmt.Sprintf(format, args...)}
}

// errHelpShown says that a subcommand printed its help.
var errHelpShown = errors.New("help shown")

// ProgramName returns how the binary is called in messages: "kubectl orca" when
// it runs as the kubectl plugin kubectl-orca, else its base name.
func ProgramName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if rest, ok := strings.CutPrefix(base, "kubectl-"); ok {
		return "kubectl " + rest
	}
	if base == "" || base == "." {
		return "orca"
	}
	return base
}

// Main runs the command line args (args[0] is the program) and returns the exit
// code: 0 on success, 1 when the command failed, 2 for a bad command line.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "orca"
	if len(args) > 0 {
		prog = ProgramName(args[0])
		args = args[1:]
	}
	env := &cmdEnv{prog: prog, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printUsage(stderr, prog)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			// "orca help fire" shows fire's help.
			return Main(ctx, []string{prog, args[1], "--help"}, stdin, stdout, stderr)
		}
		printUsage(stdout, prog)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var usage errUsage
		switch {
		case err == nil, errors.Is(err, errHelpShown):
			return 0
		case errors.As(err, &usage):
			fmt.Fprintf(stderr, "%s %s: %v\nRun '%s %s --help' for usage.\n", prog, name, err, prog, name)
			return 2
		default:
			fmt.Fprintf(stderr, "%s %s: %v\n", prog, name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\nRun '%s --help' for usage.\n", prog, name, prog)
	return 2
}

func printUsage(w io.Writer, prog string) {
	fmt.Fprintf(w, `Orca runs workflows of Tasks inside Kubernetes, started by ignitions and by
other Tasks' success or failure, joined by CloudEvents on NATS JetStream.

Usage:
  %s <command> [flags] [arguments]

Commands:
`, prog)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run '%s <command> --help' for a command's flags.
Built as kubectl-orca (go build -o kubectl-orca ./cmd/orca) and put on the PATH,
the same binary is the kubectl plugin 'kubectl orca'.
`, prog)
}

// newFlagSet returns a flag set whose help Main prints to stdout and whose errors
// become usage errors.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args with flags and positional arguments in any order (as in
// `orca fire ignitor1 -n prod`); "--" ends the flags. On -h or --help it prints
// the help (synopsis, description, then the flags) to stdout.
func parse(c *cmdEnv, fs *flag.FlagSet, synopsis, description string, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(c.stdout, "Usage:\n  %s %s\n\n%s\nFlags:\n", c.prog, synopsis, description)
				fs.SetOutput(c.stdout)
				fs.PrintDefaults()
				return nil, errHelpShown
			}
			return nil, errUsage{err.Error()}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
