package join

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// MaxTasks is the most Tasks a condition may name.
const MaxTasks = 32

// tasksVar is the map variable that names any Task: tasks["load.v2"].
const tasksVar = "tasks"

// Op is the shape of a condition, as a graph draws it.
type Op string

// Shapes of conditions.
const (
	OpAnd     Op = "AND"
	OpOr      Op = "OR"
	OpNot     Op = "NOT"
	OpAllDone Op = "ALL DONE"
	// OpExpr is any other expression.
	OpExpr Op = "CEL"
)

// Program is a compiled startWhen condition.
type Program struct {
	// Source is the CEL expression evaluated: the condition, or the expansion of
	// a shorthand.
	Source string
	// Tasks are the names of the Tasks the condition names, sorted.
	Tasks []string
	// Op is the condition's outermost operator.
	Op Op
	// Reads says, for each Task, what the condition reads of its result:
	// succeeded, failed, skipped, done, or result (more than one, or its message).
	Reads map[string]string

	idents map[string]string // identifier -> Task name, for Tasks named by identifier
	prg    cel.Program
}

// celResult is a Task's result as a condition sees it.
type celResult struct {
	Succeeded bool   `cel:"succeeded"`
	Failed    bool   `cel:"failed"`
	Skipped   bool   `cel:"skipped"`
	Done      bool   `cel:"done"`
	Message   string `cel:"message"`
	ExitCode  int64  `cel:"exitCode"`
	Reason    string `cel:"reason"`
}

// resultType is celResult's CEL type: package name and type name.
var resultType = cel.ObjectType("join.celResult")

var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[celResult](), ext.ParseStructTags(true)),
		cel.Variable(tasksVar, cel.MapType(cel.StringType, resultType)),
	)
})

var cache sync.Map // source -> compiled

type compiled struct {
	p   *Program
	err error
}

// Source returns the CEL expression of w: its condition, or its shorthand
// expanded, and the condition's shape as far as the shorthand says.
func Source(w *orcav1.StartWhen) (string, Op) {
	expand := func(names []orcav1.ObjectName, field, op string) string {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = tasksVar + "[" + strconv.Quote(string(n)) + "]." + field
		}
		return strings.Join(parts, " "+op+" ")
	}
	switch {
	case len(w.AllSucceeded) > 0:
		return expand(w.AllSucceeded, "succeeded", "&&"), OpAnd
	case len(w.AnySucceeded) > 0:
		return expand(w.AnySucceeded, "succeeded", "||"), OpOr
	case len(w.AllDone) > 0:
		return expand(w.AllDone, "done", "&&"), OpAllDone
	}
	return w.Condition, ""
}

// Compile compiles the condition of w. Programs are cached by their source, so
// compiling the same condition again is cheap. The error says what is wrong in
// words meant for the Task's author.
func Compile(w *orcav1.StartWhen) (*Program, error) {
	if w == nil {
		return nil, errors.New("no startWhen")
	}
	src, op := Source(w)
	if c, ok := cache.Load(src); ok {
		return c.(compiled).p, c.(compiled).err
	}
	p, err := compile(src, op)
	cache.Store(src, compiled{p, err})
	return p, err
}

func compile(src string, op Op) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the condition is empty")
	}
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	parsed, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("the condition does not parse: %w", iss.Err())
	}
	refs := &references{idents: map[string]string{}, reads: map[string]map[string]bool{}}
	refs.walk(parsed.NativeRep().Expr(), nil)
	if refs.err != nil {
		return nil, refs.err
	}
	if len(refs.reads) == 0 {
		return nil, errors.New("the condition names no Task")
	}
	if len(refs.reads) > MaxTasks {
		return nil, fmt.Errorf("the condition names %d Tasks, more than %d", len(refs.reads), MaxTasks)
	}
	var decls []cel.EnvOption
	for ident := range refs.idents {
		decls = append(decls, cel.Variable(ident, resultType))
	}
	env, err = env.Extend(decls...)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		if strings.Contains(iss.Err().Error(), "'_-_'") {
			return nil, fmt.Errorf(`the condition is not valid (write a Task name with '-' with '_', load_data for load-data, or as tasks["load-data"]): %w`, iss.Err())
		}
		return nil, fmt.Errorf("the condition is not valid: %w", iss.Err())
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("the condition must be true or false, not a %s", checked.OutputType())
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(100_000), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("the condition cannot be evaluated: %w", err)
	}
	p := &Program{Source: src, Op: op, Reads: map[string]string{}, idents: refs.idents, prg: prg}
	if p.Op == "" {
		p.Op = shape(checked.NativeRep().Expr())
	}
	for name, fields := range refs.reads {
		p.Tasks = append(p.Tasks, name)
		p.Reads[name] = "result"
		if len(fields) == 1 {
			for f := range fields {
				if f == "succeeded" || f == "failed" || f == "skipped" || f == "done" {
					p.Reads[name] = f
				}
			}
		}
	}
	slices.Sort(p.Tasks)
	return p, nil
}

// shape returns the outermost operator of e.
func shape(e celast.Expr) Op {
	if e.Kind() != celast.CallKind {
		return OpExpr
	}
	switch e.AsCall().FunctionName() {
	case "_&&_":
		return OpAnd
	case "_||_":
		return OpOr
	case "!_":
		return OpNot
	}
	return OpExpr
}

// objectName matches a Kubernetes object name, which every Task has.
var objectName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// builtinIdents are identifiers CEL knows: type names, not Tasks.
var builtinIdents = map[string]bool{
	"int": true, "uint": true, "double": true, "bool": true, "string": true, "bytes": true,
	"list": true, "map": true, "null_type": true, "type": true, "dyn": true,
}

// references collects the Tasks an expression names, and what it reads of each.
type references struct {
	idents map[string]string          // identifier -> Task name
	reads  map[string]map[string]bool // Task name -> fields selected
	err    error
}

func (r *references) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// task records a reference to the Task name, selecting field ("" for none).
func (r *references) task(name, field string) {
	if !objectName.MatchString(name) {
		r.fail("%q is not a Task name", name)
		return
	}
	if r.reads[name] == nil {
		r.reads[name] = map[string]bool{}
	}
	if field == "" {
		field = "result"
	}
	r.reads[name][field] = true
}

// ref returns the Task that e refers to (an identifier or tasks[...]), or "".
func (r *references) ref(e celast.Expr, scope []string) string {
	switch e.Kind() {
	case celast.IdentKind:
		id := e.AsIdent()
		if slices.Contains(scope, id) || builtinIdents[id] || id == tasksVar {
			return ""
		}
		return strings.ReplaceAll(id, "_", "-")
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() == "_[_]" && len(c.Args()) == 2 && isTasks(c.Args()[0], scope) {
			if k := c.Args()[1]; k.Kind() == celast.LiteralKind {
				if s, ok := k.AsLiteral().(types.String); ok {
					return string(s)
				}
			}
		}
	case celast.SelectKind:
		if s := e.AsSelect(); isTasks(s.Operand(), scope) {
			return s.FieldName()
		}
	}
	return ""
}

func isTasks(e celast.Expr, scope []string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == tasksVar && !slices.Contains(scope, tasksVar)
}

// walk visits e; scope holds the comprehension variables in force.
func (r *references) walk(e celast.Expr, scope []string) {
	if r.err != nil {
		return
	}
	if name := r.ref(e, scope); name != "" {
		if e.Kind() == celast.IdentKind {
			r.idents[e.AsIdent()] = name
		}
		r.task(name, "")
		return
	}
	switch e.Kind() {
	case celast.IdentKind:
		if isTasks(e, scope) {
			r.fail(`write tasks["name"] with a Task's name in quotes: tasks cannot be used otherwise`)
		}
	case celast.SelectKind:
		s := e.AsSelect()
		if name := r.ref(s.Operand(), scope); name != "" {
			if s.Operand().Kind() == celast.IdentKind {
				r.idents[s.Operand().AsIdent()] = name
			}
			r.task(name, s.FieldName())
			return
		}
		r.walk(s.Operand(), scope)
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			r.walk(c.Target(), scope)
		}
		for _, a := range c.Args() {
			r.walk(a, scope)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			r.walk(el, scope)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			r.walk(en.AsMapEntry().Key(), scope)
			r.walk(en.AsMapEntry().Value(), scope)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			r.walk(f.AsStructField().Value(), scope)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		r.walk(c.IterRange(), scope)
		r.walk(c.AccuInit(), scope)
		inner := append(slices.Clone(scope), c.IterVar(), c.AccuVar())
		if c.HasIterVar2() {
			inner = append(inner, c.IterVar2())
		}
		r.walk(c.LoopCondition(), inner)
		r.walk(c.LoopStep(), inner)
		r.walk(c.Result(), inner)
	}
}
