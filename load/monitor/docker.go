package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// StatsAPI is the part of the Docker client the sampler uses; *client.Client
// (and testcontainers' DockerClient, which embeds it) implement it.
type StatsAPI interface {
	ContainerStats(ctx context.Context, containerID string, options client.ContainerStatsOptions) (client.ContainerStatsResult, error)
}

// Docker samples a container through the Docker stats API.
type Docker struct {
	c  StatsAPI
	id string
}

// NewDocker returns a sampler of container id (a name or an id) using c,
// for example client.New(client.FromEnv, client.WithAPIVersionNegotiation()).
func NewDocker(c StatsAPI, id string) *Docker { return &Docker{c: c, id: id} }

// Name implements Sampler.
func (d *Docker) Name() string { return "docker:" + d.id }

// Sample implements Sampler: a one-shot stats read.
func (d *Docker) Sample(ctx context.Context) (Raw, error) {
	res, err := d.c.ContainerStats(ctx, d.id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return Raw{}, fmt.Errorf("%w: docker stats %s: %w", ErrSample, d.id, err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return Raw{}, fmt.Errorf("%w: decode docker stats: %w", ErrSample, err)
	}
	return Raw{CPU: time.Duration(st.CPUStats.CPUUsage.TotalUsage), RSS: rss(st.MemoryStats)}, nil
}

// rss estimates resident memory from cgroup memory stats: anon memory on
// cgroup v2, rss on v1, else usage minus page cache.
func rss(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["anon"]; ok {
		return v
	}
	if v, ok := m.Stats["rss"]; ok {
		return v
	}
	cache := m.Stats["inactive_file"]
	if cache > m.Usage {
		return 0
	}
	return m.Usage - cache
}
