package cli

// Exported for the tests of package cli_test.
var (
	ApplyPaths  = applyPaths
	InstallCRDs = installCRDs
)
