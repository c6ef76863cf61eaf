// libcni-driver: drives a CNI network list through libcni, as a runtime does.
//
//	libcni-driver add|check|del CONFLIST CONTAINER_ID NETNS IFNAME [CAPABILITY_ARGS_JSON]
//
// CNI_PATH (colon-separated) says where plugins live; CNI_CACHE_DIR where libcni
// keeps the cached results CHECK and DEL replay as prevResult. ADD prints the
// result in the list's cniVersion. Failures print libcni's error on stderr and
// exit 1. Built offline from Debian's golang-github-appc-cni-dev (GOPATH mode).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 6 {
		fail("usage: %s add|check|del CONFLIST CONTAINER_ID NETNS IFNAME [CAPS_JSON]", os.Args[0])
	}
	op, file, containerID, netns, ifname := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		fail("loading %s: %v", file, err)
	}
	caps := map[string]interface{}{}
	if len(os.Args) > 6 {
		if err := json.Unmarshal([]byte(os.Args[6]), &caps); err != nil {
			fail("capability args: %v", err)
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{
		ContainerID: containerID,
		NetNS:       netns,
		IfName:      ifname,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", containerID},
		},
		CapabilityArgs: caps,
	}
	ctx := context.Background()
	switch op {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("ADD: %v", err)
		}
		if err := result.Print(); err != nil {
			fail("printing result: %v", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("CHECK: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("DEL: %v", err)
		}
	default:
		fail("unknown operation %q", op)
	}
}
