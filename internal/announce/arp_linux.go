package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var (
	broadcast = ethernet.Broadcast
	zeroMAC   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// gratuitousARP returns a broadcast Ethernet frame carrying a gratuitous
// ARP for addr from mac, padded to the minimum frame size (mdlayher/arp and
// mdlayher/ethernet build both).
//
// Both forms have SPA = TPA = addr. The request (RFC 5227 §3 announcement)
// has THA = 0; the reply has THA = SHA, because Linux only takes a reply as
// gratuitous (and lets it override a recently confirmed neighbour entry) when
// its THA equals its SHA (net/ipv4/arp.c, arp_process).
func gratuitousARP(op arp.Operation, mac net.HardwareAddr, addr netip.Addr) ([]byte, error) {
	tha := zeroMAC
	if op == arp.OperationReply {
		tha = mac
	}
	p, err := arp.NewPacket(op, mac, addr, tha, addr)
	if err != nil {
		return nil, err
	}
	payload, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: payload}
	return f.MarshalBinary()
}

// ARP sends gratuitous ARPs on one interface. It is safe for concurrent use.
type ARP struct {
	c   *packet.Conn
	mac net.HardwareAddr
}

// dropAll is a socket filter that accepts nothing: the socket only sends,
// and without it every ARP frame on the link would queue on it unread.
var dropAll = mustAssemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})

func mustAssemble(insns []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(insns)
	if err != nil {
		panic(err)
	}
	return raw
}

// DialARP opens an AF_PACKET socket for ARP on the interface with index
// ifindex, in the calling thread's network namespace. Frames are sent from
// the interface's MAC address as it is now.
func DialARP(ifindex int) (*ARP, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("announce: interface index %d: %w", ifindex, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce: %s has no Ethernet address (%q)", ifi.Name, ifi.HardwareAddr)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("announce: ARP socket on %s: %w", ifi.Name, err)
	}
	return &ARP{c: c, mac: ifi.HardwareAddr}, nil
}

// Announce broadcasts two gratuitous ARPs for addr: the request form and the
// reply form (see appendGratuitousARP). Hosts differ in which one they
// honour; sending both is what keepalived does too.
func (a *ARP) Announce(addr netip.Addr) error {
	addr = addr.Unmap()
	if !addr.Is4() {
		return fmt.Errorf("announce: ARP for %v: not an IPv4 address", addr)
	}
	return errors.Join(
		a.send(arp.OperationRequest, addr),
		a.send(arp.OperationReply, addr),
	)
}

func (a *ARP) send(op arp.Operation, addr netip.Addr) error {
	b, err := gratuitousARP(op, a.mac, addr)
	if err != nil {
		return fmt.Errorf("announce: gratuitous ARP (op %d) for %v: %w", op, addr, err)
	}
	if _, err := a.c.WriteTo(b, &packet.Addr{HardwareAddr: broadcast}); err != nil {
		return fmt.Errorf("announce: gratuitous ARP (op %d) for %v: %w", op, addr, err)
	}
	return nil
}

// Close closes the socket.
func (a *ARP) Close() error { return a.c.Close() }
