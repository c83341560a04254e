package join

import (
	"encoding/json"
	"maps"
	"slices"
	"unicode/utf8"
)

// MaxInputs is the largest ORCA_INPUTS, in bytes. It is an environment variable,
// and Linux refuses to start a program with one "NAME=value" string of 128 KiB or
// more; 64 KiB leaves room for the rest, as for ignition data. Longer inputs have
// their longest messages cut, each marked messageTruncated.
const MaxInputs = 64 << 10

// input is one Task's entry in ORCA_INPUTS.
type input struct {
	Result           Outcome `json:"result"`
	Message          string  `json:"message"`
	MessageTruncated bool    `json:"messageTruncated,omitempty"`
	ExitCode         int32   `json:"exitCode,omitempty"`
	Reason           string  `json:"reason,omitempty"`
}

// Inputs returns ORCA_INPUTS for a run: a JSON object with an entry for each Task
// of the condition that has a result in the run (result, message, and for a
// failure exitCode and reason), at most MaxInputs bytes long. With p nil (a
// condition that does not compile) it holds every result of the run.
func Inputs(p *Program, results map[string]Result) string {
	names := slices.Sorted(maps.Keys(results))
	if p != nil {
		names = p.Tasks
	}
	in := map[string]*input{}
	for _, name := range names {
		if r, ok := results[name]; ok {
			in[name] = &input{Result: r.Outcome, Message: r.Message, ExitCode: r.ExitCode, Reason: r.Reason}
		}
	}
	for {
		b, err := json.Marshal(in)
		if err != nil {
			return "{}"
		}
		over := len(b) - MaxInputs
		if over <= 0 {
			return string(b)
		}
		// Cut the longest message by what is over (and a little for escapes).
		var longest *input
		for _, name := range slices.Sorted(maps.Keys(in)) {
			if longest == nil || len(in[name].Message) > len(longest.Message) {
				longest = in[name]
			}
		}
		if longest == nil || longest.Message == "" {
			return "{}"
		}
		keep := max(len(longest.Message)-over-16, 0)
		for keep > 0 && !utf8.RuneStart(longest.Message[keep]) {
			keep--
		}
		longest.Message, longest.MessageTruncated = longest.Message[:keep], true
	}
}
