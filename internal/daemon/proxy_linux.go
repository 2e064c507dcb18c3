package daemon

import "github.com/vipd/vipd/internal/proxy"

// ListenProxy opens a proxy virtual server's listener (IP_FREEBIND: it
// needs no VIP on the host).
func (*linuxSystem) ListenProxy(c proxy.Config) (VirtualProxy, error) { return proxy.Listen(c) }
