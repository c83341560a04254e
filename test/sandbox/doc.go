// Package sandbox_test drives `orca run --sandbox --apply examples`, what `make
// run` runs, as a user would: the built binary, kubectl, the CLI and Ctrl-C.
package sandbox_test
