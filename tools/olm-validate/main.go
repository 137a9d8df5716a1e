// Command olm-validate loads an OLM bundle directory and runs the Operator
// Framework's validators on it: the default bundle set that `operator-sdk
// bundle validate` always runs, plus the operatorframework suite (OperatorHub
// metadata, standard categories and capabilities, good practices, deprecated
// APIs) and the object validator (PodDisruptionBudgets and the like).
//
// Usage: olm-validate [-k8s-version 1.37] <bundle dir>
// Prints every error and warning, one per line; exits 1 when any error was found,
// 2 when the bundle cannot be loaded.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

type namedValidator struct {
	name      string
	validator interfaces.Validator
}

// Every validator that applies to a registry+v1 bundle without network access.
// Left out: the package-manifest and OperatorGroup validators (other input
// kinds), the deprecated community and v1 OperatorHub validators (replaced by
// the v2 one and the category/capability validators), and multiarch (it pulls
// the operator image with a container tool).
var validators = []namedValidator{
	{"csv", validation.ClusterServiceVersionValidator},
	{"crd", validation.CustomResourceDefinitionValidator},
	{"bundle", validation.BundleValidator},
	{"object", validation.ObjectValidator},
	{"operatorhub", validation.OperatorHubV2Validator},
	{"standard-categories", validation.StandardCategoriesValidator},
	{"standard-capabilities", validation.StandardCapabilitiesValidator},
	{"good-practices", validation.GoodPracticesValidator},
	{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
}

func main() {
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version (e.g. 1.37) whose removed APIs count as errors")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-k8s-version X.Y] <bundle dir>\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	dir := flag.Arg(0)

	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR cannot load bundle %s: %v\n", dir, err)
		os.Exit(2)
	}
	objs := bundle.ObjectsToValidate()
	if *k8sVersion != "" {
		// The validators read optional settings from a map among the objects.
		objs = append(objs, map[string]string{"k8s-version": *k8sVersion})
	}

	errorCount, warningCount := 0, 0
	for _, v := range validators {
		for _, result := range v.validator.Validate(objs...) {
			for _, e := range sorted(result.Errors) {
				errorCount++
				fmt.Printf("ERROR   [%s] %s: %s\n", v.name, result.Name, e.Error())
			}
			for _, w := range sorted(result.Warnings) {
				warningCount++
				fmt.Printf("WARNING [%s] %s: %s\n", v.name, result.Name, w.Error())
			}
		}
	}
	fmt.Printf("olm-validate: %s (CSV %s, %d CRDs, %d manifests): %d errors, %d warnings, %d validators\n",
		dir, bundle.CSV.GetName(), len(bundle.V1CRDs)+len(bundle.V1beta1CRDs), len(bundle.Objects), errorCount, warningCount, len(validators))
	if errorCount > 0 {
		os.Exit(1)
	}
}

func sorted(errs []errors.Error) []errors.Error {
	out := append([]errors.Error(nil), errs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Error() < out[j].Error() })
	return out
}
