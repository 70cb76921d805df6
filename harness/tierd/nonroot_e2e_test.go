//go:build e2e

package tierd_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/images"
)

// TestContainersRunAsNonRoot: every process of every container of the
// stack (MinIO, Toxiproxy, s3fault, and tierd and the data sidecar when
// they run) has the uid 65532, and the stack works (the other tests of the
// package write through all of them).
func TestContainersRunAsNonRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack.NewCase(t)
	cli, err := dockerenv.Client(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", cleanup.LabelRun+"="+stack.Run.ID),
	})
	require.NoError(t, err)
	var names []string
	for _, c := range list.Items {
		name := strings.TrimPrefix(c.Names[0], "/tierchaos-"+stack.Run.ID+"-")
		names = append(names, name)
		inspect, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		require.NoError(t, err)
		require.Equal(t, images.RunUser, inspect.Container.Config.User, "%s's configured user", name)
		top, err := cli.ContainerTop(ctx, c.ID, client.ContainerTopOptions{Arguments: []string{"-o", "pid,uid,gid,comm"}})
		require.NoError(t, err)
		require.NotEmpty(t, top.Processes, name)
		for _, p := range top.Processes {
			require.Equal(t, []string{"65532", "65532"}, p[1:3], "%s: process %v (%v)", name, p, top.Titles)
		}
	}
	want := []string{"minio", "toxiproxy", "s3fault"}
	if stack.Mode == "container" {
		want = append(want, "tierd", "datavol")
	}
	for _, w := range want {
		require.True(t, slices.Contains(names, w), "container %s among %v", w, names)
	}
}
