package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// VMAC is a virtual MAC interface: a macvlan in bridge mode on a parent,
// carrying the virtual router MAC. It is created down; it is up only while
// its instance is Master, so that a Backup never sends a frame from the
// virtual MAC (the switch would move the MAC to the Backup's port).
type VMAC struct {
	Name   string
	Index  int
	Parent int
	h      *netlink.Handle
}

// OpenVMAC creates the virtual MAC interface name on parent, down, with
// the sysctls it needs (SetVMACSysctls); one that a crashed run of vipd
// left is replaced, one that is not vipd's refused.
func OpenVMAC(name string, parent int, mac net.HardwareAddr, ipv6 bool) (*VMAC, error) {
	if err := checkIfName(name); err != nil {
		return nil, err
	}
	h := oneShot
	if old, err := h.LinkByName(name); err == nil {
		if old.Attrs().Alias != VMACAlias || old.Type() != "macvlan" {
			return nil, fmt.Errorf("netif: %s exists and is not a vipd virtual MAC interface (a %s, alias %q): rename it or set virtual_mac_interface", name, old.Type(), old.Attrs().Alias)
		}
		if err := h.LinkDel(old); err != nil {
			return nil, fmt.Errorf("netif: removing the stale %s: %w", name, err)
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.ParentIndex, la.HardwareAddr = name, parent, mac
	mv := &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}
	if err := h.LinkAdd(mv); err != nil {
		return nil, fmt.Errorf("netif: creating the virtual MAC interface %s: %w", name, err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("netif: %s: %w", name, err)
	}
	v := &VMAC{Name: name, Index: link.Attrs().Index, Parent: parent, h: h}
	fail := func(err error) (*VMAC, error) {
		_ = v.Close()
		return nil, err
	}
	if err := h.LinkSetAlias(link, VMACAlias); err != nil {
		return fail(fmt.Errorf("netif: marking %s as vipd's: %w", name, err))
	}
	if err := setVMACSysctls(name, ipv6); err != nil {
		return fail(err)
	}
	if ipv6 {
		// No address of its own: a link-local address would send DAD and
		// MLD from the virtual MAC, and the EUI-64 one would be the same
		// on every router. The instance adds its parent's.
		if err := h.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
			return fail(fmt.Errorf("netif: %s: addrgenmode none: %w", name, err))
		}
	}
	return v, nil
}

// SetUp sets the interface administratively up or down.
func (v *VMAC) SetUp(up bool) error {
	link, err := v.h.LinkByIndex(v.Index)
	if err != nil {
		return fmt.Errorf("netif: %s: %w", v.Name, err)
	}
	if up {
		err = v.h.LinkSetUp(link)
	} else {
		err = v.h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("netif: %s up=%t: %w", v.Name, up, err)
	}
	return nil
}

// Close deletes the interface (and with it its addresses); one already
// gone is not an error.
func (v *VMAC) Close() error {
	link, err := v.h.LinkByIndex(v.Index)
	if err != nil {
		return nil
	}
	if link.Attrs().Alias != VMACAlias && link.Attrs().Alias != "" {
		return nil // not ours any more
	}
	if err := v.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("netif: deleting %s: %w", v.Name, err)
	}
	return nil
}

// CleanupVMACs deletes every virtual MAC interface vipd made (VMACAlias),
// and returns their names.
func CleanupVMACs() ([]string, error) {
	links, err := oneShot.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netif: listing links: %w", err)
	}
	var names []string
	var errs []error
	for _, l := range links {
		if l.Type() != "macvlan" || l.Attrs().Alias != VMACAlias {
			continue
		}
		if err := oneShot.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("netif: deleting %s: %w", l.Attrs().Name, err))
			continue
		}
		names = append(names, l.Attrs().Name)
	}
	return names, errors.Join(errs...)
}

// setVMACSysctls makes a virtual MAC interface answer for its own
// addresses only: ARP for the VIPs it holds and not for the host's other
// addresses (arp_ignore 1, arp_announce 2), loose reverse-path filtering
// (the route back to a client is through the parent), and for IPv4 no IPv6
// at all; for IPv6 no router advertisements, autoconfiguration or DAD.
func setVMACSysctls(name string, ipv6 bool) error {
	var set []string
	if ipv6 {
		set = []string{"ipv6/conf/%s/accept_ra=0", "ipv6/conf/%s/autoconf=0", "ipv6/conf/%s/accept_dad=0", "ipv6/conf/%s/disable_ipv6=0"}
	} else {
		set = []string{"ipv6/conf/%s/disable_ipv6=1", "ipv4/conf/%s/arp_ignore=1", "ipv4/conf/%s/arp_announce=2", "ipv4/conf/%s/rp_filter=2"}
	}
	for _, s := range set {
		k, val, _ := strings.Cut(fmt.Sprintf(s, name), "=")
		if _, err := writeSysctl(k, val); err != nil {
			if ipv6 || !strings.HasPrefix(k, "ipv6/") || !os.IsNotExist(errors.Unwrap(err)) {
				return err
			}
			// A kernel without IPv6 has nothing to turn off.
		}
	}
	return nil
}

// writeSysctl sets /proc/sys/net/KEY to val and returns what it was.
func writeSysctl(key, val string) (string, error) {
	p := filepath.Join("/proc/sys/net", key)
	old, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("netif: sysctl %s: %w", p, err)
	}
	if strings.TrimSpace(string(old)) == val {
		return val, nil
	}
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return "", fmt.Errorf("netif: sysctl %s=%s: %w", p, val, err)
	}
	return strings.TrimSpace(string(old)), nil
}

// ParentSysctls sets, on the parents of IPv4 virtual MAC interfaces,
// arp_ignore 1 and arp_announce 2 — so that the parent neither answers ARP
// for a VIP that lives on the virtual MAC interface (with the parent's own
// MAC: the client's entry would flip) nor uses a VIP as the source of its
// own ARP requests — while any such interface needs them, and puts back
// what was there before when the last one goes.
type ParentSysctls struct {
	mu    sync.Mutex
	users map[string]int
	saved map[string][2]string // arp_ignore, arp_announce before
}

var parentKeys = [2]string{"arp_ignore", "arp_announce"}
var parentVals = [2]string{"1", "2"}

// Acquire sets them on the named parent for one more user.
func (ps *ParentSysctls) Acquire(parent string) error {
	if err := checkIfName(parent); err != nil {
		return err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.users[parent] > 0 {
		ps.users[parent]++
		return nil
	}
	var old [2]string
	for i, k := range parentKeys {
		o, err := writeSysctl("ipv4/conf/"+parent+"/"+k, parentVals[i])
		if err != nil {
			for j := range i {
				_, _ = writeSysctl("ipv4/conf/"+parent+"/"+parentKeys[j], old[j])
			}
			return err
		}
		old[i] = o
	}
	if ps.users == nil {
		ps.users, ps.saved = map[string]int{}, map[string][2]string{}
	}
	ps.users[parent], ps.saved[parent] = 1, old
	return nil
}

// Release gives one user's back; the last puts the old values back.
func (ps *ParentSysctls) Release(parent string) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.users[parent] == 0 {
		return nil
	}
	ps.users[parent]--
	if ps.users[parent] > 0 {
		return nil
	}
	old := ps.saved[parent]
	delete(ps.users, parent)
	delete(ps.saved, parent)
	var errs []error
	for i, k := range parentKeys {
		if _, err := writeSysctl("ipv4/conf/"+parent+"/"+k, old[i]); err != nil && !os.IsNotExist(errors.Unwrap(err)) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AddLinkLocal adds ll (a link-local IPv6 address, the parent's) to the
// interface, without DAD: adverts leave a virtual MAC interface from the
// parent's link-local address (RFC 9568 §5.1.2.1), which the kernel lets
// a socket use only on an interface that has it.
func (v *VMAC) AddLinkLocal(ll netip.Addr) error {
	na := &netlink.Addr{IPNet: &net.IPNet{IP: ll.WithZone("").AsSlice(), Mask: net.CIDRMask(64, 128)},
		Flags: unix.IFA_F_PERMANENT | unix.IFA_F_NODAD, Scope: unix.RT_SCOPE_LINK, LinkIndex: v.Index}
	if err := v.h.AddrReplace(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: v.Index}}, na); err != nil {
		return fmt.Errorf("netif: adding %s to %s: %w", ll, v.Name, err)
	}
	return nil
}

func checkIfName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 15 || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Errorf("netif: bad interface name %q", s)
	}
	return nil
}
