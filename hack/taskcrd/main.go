// Command taskcrd finishes the generated Task CRD where controller-gen cannot:
//
//   - It adds the container-name checks: the Pod template is corev1.PodTemplateSpec,
//     a type that carries no markers, and a CEL rule over its unbounded container
//     list would exceed the API server's cost budget. It bounds the container lists
//     and gives each container name the rule a Pod has (a lowercase RFC 1123
//     label), so that the API server rejects a bad name when the Task is applied,
//     not when its Pod is created.
//   - It drops the descriptions inside the embedded Pod template (Kubernetes' own
//     Pod documentation, copied into every field): with them the CRD is over 600 KB,
//     and a client-side `kubectl apply` fails because its last-applied annotation
//     may hold at most 256 KiB. The schema, and so the validation at apply time,
//     stays whole; `kubectl explain pod` documents those fields.
//
// It runs after controller-gen in `make manifests` and rewrites the file in place;
// running it twice changes nothing.
package main

import (
	"fmt"
	"os"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// maxContainers bounds each container list of a Task's template.
const maxContainers = 64

var nameRule = apiextensionsv1.ValidationRule{
	Rule: `self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
	MessageExpression: `'"' + self + '" is not a valid container name: a Pod accepts only ` +
		`lowercase letters, digits and \'-\', starting and ending with a letter or digit'`,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: taskcrd <task CRD file>")
		os.Exit(2)
	}
	if err := patchFile(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "taskcrd:", err)
		os.Exit(1)
	}
}

func patchFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	for i := range crd.Spec.Versions {
		if err := patchVersion(&crd.Spec.Versions[i]); err != nil {
			return fmt.Errorf("%s version %s: %w", path, crd.Spec.Versions[i].Name, err)
		}
	}
	// Marshal through a map to leave out the empty status that the typed object has.
	var obj map[string]any
	if err := convert(&crd, &obj); err != nil {
		return err
	}
	delete(obj, "status")
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

func patchVersion(v *apiextensionsv1.CustomResourceDefinitionVersion) error {
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		return fmt.Errorf("no schema")
	}
	err := update(v.Schema.OpenAPIV3Schema, []string{"spec", "template"}, func(template *apiextensionsv1.JSONSchemaProps) error {
		for name, p := range template.Properties {
			dropDescriptions(&p)
			template.Properties[name] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, list := range []string{"containers", "initContainers"} {
		err := update(v.Schema.OpenAPIV3Schema, []string{"spec", "template", "spec", list},
			func(containers *apiextensionsv1.JSONSchemaProps) error {
				containers.MaxItems = ptr.To[int64](maxContainers)
				if containers.Items == nil || containers.Items.Schema == nil {
					return fmt.Errorf("%s has no item schema", list)
				}
				return update(containers.Items.Schema, []string{"name"}, func(name *apiextensionsv1.JSONSchemaProps) error {
					name.MinLength = ptr.To[int64](1)
					name.MaxLength = ptr.To[int64](63)
					name.XValidations = apiextensionsv1.ValidationRules{nameRule}
					return nil
				})
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// dropDescriptions removes the descriptions of s and of every schema below it.
func dropDescriptions(s *apiextensionsv1.JSONSchemaProps) {
	s.Description = ""
	each := func(m map[string]apiextensionsv1.JSONSchemaProps) {
		for k, c := range m {
			dropDescriptions(&c)
			m[k] = c
		}
	}
	each(s.Properties)
	each(s.PatternProperties)
	each(s.Definitions)
	for _, list := range [][]apiextensionsv1.JSONSchemaProps{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			dropDescriptions(&list[i])
		}
	}
	if s.Not != nil {
		dropDescriptions(s.Not)
	}
	if s.Items != nil {
		if s.Items.Schema != nil {
			dropDescriptions(s.Items.Schema)
		}
		for i := range s.Items.JSONSchemas {
			dropDescriptions(&s.Items.JSONSchemas[i])
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		dropDescriptions(s.AdditionalProperties.Schema)
	}
	if s.AdditionalItems != nil && s.AdditionalItems.Schema != nil {
		dropDescriptions(s.AdditionalItems.Schema)
	}
}

// update applies fn to the schema of the property at path below s. Properties are
// held by value, so each level is written back after fn has changed it.
func update(s *apiextensionsv1.JSONSchemaProps, path []string, fn func(*apiextensionsv1.JSONSchemaProps) error) error {
	if len(path) == 0 {
		return fn(s)
	}
	child, ok := s.Properties[path[0]]
	if !ok {
		return fmt.Errorf("no property %q", path[0])
	}
	if err := update(&child, path[1:], fn); err != nil {
		return err
	}
	s.Properties[path[0]] = child
	return nil
}

func convert(in, out any) error {
	b, err := yaml.Marshal(in)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, out)
}
