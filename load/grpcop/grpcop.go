// Package grpcop gives the load driver tierd's gRPC API: a small pool of
// connections, dialled once and shared by every request (no dial per
// request), behind the method set of tierd's clients (client.API), so the
// default workload (load/workload) runs over gRPC with the same operations
// as over REST.
package grpcop

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// DefaultConns is the pool's size when Options.Conns is 0: a few HTTP/2
// connections spread the streams of an open-loop run over as many TCP
// connections and server transports.
const DefaultConns = 4

// ErrOptions is returned (wrapped) for invalid options.
var ErrOptions = errors.New("grpcop: invalid options")

// Options tunes Dial.
type Options struct {
	// Conns is the number of connections (default DefaultConns).
	Conns int
	// Token and AdminToken are tierd's bearer tokens ("" for none).
	Token, AdminToken string
}

// Client is a tierd gRPC client whose calls take turns over the pool's
// connections. Close it when done.
type Client struct {
	*grpcclient.Client
	pool *pool
}

// Dial opens o.Conns connections to the tierd gRPC API at target
// (host:port). Connections are established lazily, by the first calls.
func Dial(target string, o Options) (*Client, error) {
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.Conns < 0 {
		return nil, fmt.Errorf("%w: %d connections", ErrOptions, o.Conns)
	}
	if target == "" {
		return nil, fmt.Errorf("%w: no target", ErrOptions)
	}
	p := &pool{}
	for range o.Conns {
		// Each Dial opens its own connection; New below uses them through
		// the pool, and Close closes them.
		c, err := grpcclient.Dial(target)
		if err != nil {
			return nil, errors.Join(err, p.close())
		}
		p.clients = append(p.clients, c)
		p.conns = append(p.conns, c.Conn())
	}
	return &Client{Client: grpcclient.New(p, grpcclient.WithToken(o.Token), grpcclient.WithAdminToken(o.AdminToken)), pool: p}, nil
}

// Close closes every connection of the pool.
func (c *Client) Close() error { return c.pool.close() }

// Conns returns the pool's size.
func (c *Client) Conns() int { return len(c.pool.conns) }

// pool sends each call over the next connection in turn.
type pool struct {
	clients []*grpcclient.Client
	conns   []*grpc.ClientConn
	next    atomic.Uint64
}

func (p *pool) pick() *grpc.ClientConn {
	return p.conns[(p.next.Add(1)-1)%uint64(len(p.conns))]
}

// Invoke implements grpc.ClientConnInterface.
func (p *pool) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return p.pick().Invoke(ctx, method, args, reply, opts...)
}

// NewStream implements grpc.ClientConnInterface.
func (p *pool) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return p.pick().NewStream(ctx, desc, method, opts...)
}

func (p *pool) close() error {
	var errs []error
	for _, c := range p.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
