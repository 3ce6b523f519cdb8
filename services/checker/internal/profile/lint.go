package profile

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Problem is one thing wrong with a profile file, at a line (0: the file
// as a whole).
type Problem struct {
	Line    int
	Message string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// Lint reads a profile file and reports every problem with its line:
// unknown keys (a step kind that does not exist is one), and everything
// Validate refuses. No problem means Parse accepts the file.
func Lint(data []byte) []Problem {
	var root yaml3.Node
	if err := yaml3.Unmarshal(data, &root); err != nil {
		return []Problem{{Line: yamlErrLine(err), Message: err.Error()}}
	}
	l := &linter{lines: map[string]int{}}
	if len(root.Content) == 1 {
		l.walk(root.Content[0], "", reflect.TypeFor[Profile]())
	}
	if len(l.problems) > 0 {
		return l.sorted() // Validate would stumble on what it cannot read
	}
	var p Profile
	if err := yaml.Unmarshal(data, &p); err != nil {
		return []Problem{{Message: err.Error()}}
	}
	p.Timeouts.fillDefaults()
	for _, err := range leaves(p.Validate()) {
		msg := err.Error()
		l.problems = append(l.problems, Problem{Line: l.lineOf(msg), Message: msg})
	}
	return l.sorted()
}

type linter struct {
	lines    map[string]int // field path ("flows.check[2].goto") → line
	problems []Problem
}

func (l *linter) sorted() []Problem {
	sort.SliceStable(l.problems, func(i, j int) bool { return l.problems[i].Line < l.problems[j].Line })
	return l.problems
}

// lineOf finds the line of the longest field path that begins msg.
func (l *linter) lineOf(msg string) int {
	best, line := 0, 0
	for path, ln := range l.lines {
		if len(path) > best && strings.HasPrefix(msg, path) {
			if rest := msg[len(path):]; rest == "" || strings.ContainsAny(rest[:1], " :.[") {
				best, line = len(path), ln
			}
		}
	}
	return line
}

var (
	markerType   = reflect.TypeFor[Marker]()
	durationType = reflect.TypeFor[Duration]()
	stepType     = reflect.TypeFor[Step]()
)

// walk checks node against the Go type t, recording the line of every
// field path.
func (l *linter) walk(n *yaml3.Node, path string, t reflect.Type) {
	if path != "" {
		l.lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml3.AliasNode {
		n = n.Alias
	}
	switch {
	case t == markerType && n.Kind == yaml3.ScalarNode, t == durationType:
		return
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			l.problems = append(l.problems, Problem{n.Line, fmt.Sprintf("%s: want a mapping", orRoot(path))})
			return
		}
		fields := jsonFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				l.problems = append(l.problems, Problem{k.Line, unknownKey(path, k.Value, t, fields)})
				continue
			}
			l.walk(v, join(path, k.Value), ft)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml3.MappingNode {
			l.problems = append(l.problems, Problem{n.Line, fmt.Sprintf("%s: want a mapping", orRoot(path))})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.walk(n.Content[i+1], join(path, n.Content[i].Value), t.Elem())
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml3.SequenceNode {
			l.problems = append(l.problems, Problem{n.Line, fmt.Sprintf("%s: want a list", orRoot(path))})
			return
		}
		for i, e := range n.Content {
			l.walk(e, fmt.Sprintf("%s[%d]", path, i), t.Elem())
		}
	}
}

func unknownKey(path, key string, t reflect.Type, fields map[string]reflect.Type) string {
	if t == stepType {
		return fmt.Sprintf("%s: unknown step kind or key %q (want one of %s; or name, timeout, expect)",
			orRoot(path), key, strings.Join(stepKinds, ", "))
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	slices.Sort(known)
	return fmt.Sprintf("%s: unknown key %q (want one of %s)", orRoot(path), key, strings.Join(known, ", "))
}

func orRoot(path string) string {
	if path == "" {
		return "the profile"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields are a struct's fields by their JSON names.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func yamlErrLine(err error) int {
	var te *yaml3.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}
