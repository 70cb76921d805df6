// Package k8s holds the Kubernetes manifests that run tierload shards; its
// test checks that they parse and agree with each other.
package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name         string   `yaml:"name"`
	Image        string   `yaml:"image"`
	Args         []string `yaml:"args"`
	Env          []envVar `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// Job
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				RestartPolicy string      `yaml:"restartPolicy"`
				Containers    []container `yaml:"containers"`
				Volumes       []struct {
					Name                  string `yaml:"name"`
					PersistentVolumeClaim struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// PersistentVolumeClaim
		AccessModes []string `yaml:"accessModes"`
	} `yaml:"spec"`
}

// parse decodes every document of a multi-document YAML file; each must
// have a kind and an apiVersion.
func parse(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, path)
		require.NotEmpty(t, o.Kind, "%s: a document without kind", path)
		require.NotEmpty(t, o.APIVersion, "%s: %s without apiVersion", path, o.Kind)
		out = append(out, o)
	}
	return out
}

func find(t *testing.T, objs []object, kind string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind {
			return o
		}
	}
	t.Fatalf("no %s", kind)
	return object{}
}

func env(c container, name string) envVar {
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	return envVar{}
}

func TestShardJob(t *testing.T) {
	objs := parse(t, "tierload-shards.yaml")
	require.Len(t, objs, 2)
	pvc := find(t, objs, "PersistentVolumeClaim")
	assert.Equal(t, []string{"ReadWriteMany"}, pvc.Spec.AccessModes, "all shards write at once")

	job := find(t, objs, "Job")
	assert.Equal(t, "batch/v1", job.APIVersion)
	assert.Equal(t, "Indexed", job.Spec.CompletionMode)
	require.NotNil(t, job.Spec.Completions)
	require.NotNil(t, job.Spec.Parallelism)
	n := *job.Spec.Completions
	assert.Equal(t, n, *job.Spec.Parallelism, "every shard runs at the same time")
	assert.Equal(t, "Never", job.Spec.Template.Spec.RestartPolicy)

	pod := job.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, strconv.Itoa(n), env(c, "SHARD_COUNT").Value, "SHARD_COUNT matches completions")
	idx := env(c, "SHARD_INDEX")
	require.NotNil(t, idx.ValueFrom, "SHARD_INDEX comes from the completion index")
	assert.Equal(t, "metadata.annotations['batch.kubernetes.io/job-completion-index']", idx.ValueFrom.FieldRef.FieldPath)
	assert.NotEmpty(t, env(c, "RUN_SEED").Value, "every shard gets the same run seed")
	assert.Contains(t, c.Args, "-shard=$(SHARD_INDEX)/$(SHARD_COUNT)")
	assert.Contains(t, c.Args, "-seed=$(RUN_SEED)")
	assert.Contains(t, c.Args, "-url=$(TIERD_URL)")
	assert.Contains(t, c.Args, "-out=/reports/shard-$(SHARD_INDEX)")

	require.Len(t, c.VolumeMounts, 1)
	assert.Equal(t, "/reports", c.VolumeMounts[0].MountPath)
	require.Len(t, pod.Volumes, 1)
	assert.Equal(t, c.VolumeMounts[0].Name, pod.Volumes[0].Name)
	assert.Equal(t, pvc.Metadata.Name, pod.Volumes[0].PersistentVolumeClaim.ClaimName)

	// The merge Job reads exactly the folders the shards write.
	merge := find(t, parse(t, "tierload-merge.yaml"), "Job")
	mpod := merge.Spec.Template.Spec
	require.Len(t, mpod.Containers, 1)
	args := mpod.Containers[0].Args
	require.NotEmpty(t, args)
	assert.Equal(t, "merge", args[0])
	var dirs []string
	for i := range n {
		dirs = append(dirs, fmt.Sprintf("/reports/shard-%d", i))
	}
	assert.Equal(t, dirs, args[len(args)-n:])
	require.Len(t, mpod.Volumes, 1)
	assert.Equal(t, pvc.Metadata.Name, mpod.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.Equal(t, "/reports", mpod.Containers[0].VolumeMounts[0].MountPath)
	assert.Equal(t, c.Image, mpod.Containers[0].Image)
}
