package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/deploy/kustomize/crd"
)

// fieldOwner is the server-side apply field manager of what `orca run` applies.
const fieldOwner = "orca-run"

var crdKind = apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// installCRDs applies Orca's embedded CRDs and waits until they are established.
func installCRDs(ctx context.Context, c client.Client, out io.Writer) error {
	crds, err := crd.Objects()
	if err != nil {
		return err
	}
	for _, def := range crds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(def)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(crdKind)
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("install CRD %s: %w (installing CRDs needs a cluster admin; or apply deploy/kustomize/crd yourself and drop --install-crds)", def.Name, err)
		}
		if err := waitEstablished(ctx, c, def.Name); err != nil {
			return err
		}
		fmt.Fprintf(out, "customresourcedefinition.apiextensions.k8s.io/%s installed\n", def.Name)
	}
	return nil
}

func waitEstablished(ctx context.Context, c client.Client, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		// Unstructured: the services' scheme has no apiextensions types.
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(crdKind)
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		var def apiextensionsv1.CustomResourceDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &def); err != nil {
			return false, err
		}
		for _, cond := range def.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established within 30s: %w", name, err)
	}
	return nil
}

// applyPaths applies the objects of YAML files, and of the .yaml, .yml and .json
// files of folders, with server-side apply. Objects without a namespace go to
// namespace. Kinds are applied in an order that lets each find what it refers to:
// CRDs and Namespaces first, Ignitors last, so that an Ignitor firing now finds its
// Tasks.
func applyPaths(ctx context.Context, c client.Client, namespace string, paths []string, out io.Writer) error {
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return err
		}
		for _, f := range files {
			docs, err := readObjects(f)
			if err != nil {
				return err
			}
			objs = append(objs, docs...)
		}
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return kindRank(a) - kindRank(b) })
	for _, u := range objs {
		namespaced, err := c.IsObjectNamespaced(u)
		if err != nil {
			return fmt.Errorf("apply %s %s: %w (are Orca's CRDs installed? pass --install-crds)", u.GetKind(), u.GetName(), err)
		}
		if namespaced && u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(u.GetKind()), objectName(u), err)
		}
		fmt.Fprintf(out, "%s/%s applied\n", strings.ToLower(u.GroupVersionKind().GroupKind().String()), u.GetName())
	}
	return nil
}

func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", path, err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("apply %s: no .yaml, .yml or .json file in the folder", path)
	}
	return files, nil
}

func readObjects(file string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", file, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("apply %s: document %d: %w", file, i, err)
		}
		if len(u.Object) == 0 {
			continue // an empty document, e.g. after a trailing ---
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("apply %s: document %d needs apiVersion, kind and metadata.name", file, i)
		}
		objs = append(objs, u)
	}
}

func kindRank(u *unstructured.Unstructured) int {
	switch u.GetKind() {
	case "CustomResourceDefinition":
		return 0
	case "Namespace":
		return 1
	case "Ignitor":
		return 4
	case "Task":
		return 3
	default:
		return 2
	}
}

func objectName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}
