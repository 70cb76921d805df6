// Package netfault is the typed network fault API of the tierchaos harness,
// over Toxiproxy: latency with jitter, bandwidth, timeout, reset_peer,
// limit_data, slow_close and slicer toxics, up- or downstream, with a
// toxicity, and a proxy taken down.
//
//	p, err := netfault.New(stack.S3Proxy)
//	p.ApplyT(t, netfault.Latency(200*time.Millisecond).Jitter(50*time.Millisecond))
//	p.ApplyT(t, netfault.Bandwidth(64).Upstream())
//	err = p.During(ctx, 2*time.Second, netfault.ResetPeer(0).Toxicity(0.3))
//
// Every Apply returns a Fault whose Remove undoes exactly what it added; the
// T helpers register that removal with t.Cleanup. Toxic names are unique per
// fault, so faults coexist on one proxy.
//
// A fault applied is a fault in effect: Apply drops the proxy's existing
// connections after adding the toxics (Proxy.KeepingConnections opts out),
// so a client's kept-alive connection cannot carry on without the toxics or
// with toxics that joined it mid-stream. See README.md for what Toxiproxy
// does to live connections otherwise.
package netfault
