// Command localkube runs a real Kubernetes control plane on loopback for Tether's tests and
// quickstart: kube-apiserver with embedded etcd, kube-controller-manager, kube-scheduler and
// simulated nodes, all built from Kubernetes' own Go modules (no prebuilt binaries, no kubelet).
//
// One binary plays every role, as hyperkube did: `localkube up` supervises the components as
// child processes of itself, so one link step builds the whole control plane.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "time/tzdata"
)

func init() {
	// Children get Pdeathsig, which Linux ties to the thread that forked them. Keeping main on
	// one OS thread (and forking only from it) makes "the supervisor died" mean "children die".
	runtime.LockOSThread()
}

const usage = `usage: localkube ROLE [ARGS...]

roles:
  up                       start a whole control plane and supervise it (see: localkube up --help)
  kube-apiserver           run kube-apiserver
  kube-controller-manager  run kube-controller-manager
  kube-scheduler           run kube-scheduler
  kubectl                  run kubectl
  version                  print the Kubernetes version this binary was built from
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	role, args := os.Args[1], os.Args[2:]
	// Each component parses os.Args as if it were its own binary.
	os.Args = append([]string{role}, args...)
	switch role {
	case "up":
		os.Exit(runUp(args))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		runKubectl()
	case "version":
		fmt.Println(version.Get().GitVersion)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "localkube: unknown role %q\n\n%s", role, usage)
		os.Exit(2)
	}
}

func runKubectl() {
	var command *cobra.Command = kubectl.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
}
