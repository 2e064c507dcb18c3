package config

import (
	"reflect"
	"testing"
)

func TestVirtualMAC(t *testing.T) {
	cfg, err := Parse("vipd.yaml", []byte(doc(
		"instances:",
		"  - {name: a, interface: eth0, vrid: 51, vips: [192.0.2.50/24], virtual_mac: true}",
		"  - {name: b, interface: eth0, vrid: 51, vips: ['2001:db8::50/64'], virtual_mac: true}",
		"  - {name: c, interface: eth1, vrid: 51, vips: [198.51.100.50/24], virtual_mac: true, virtual_mac_interface: vmac51b}",
		"  - {name: d, interface: eth1, vrid: 52, vips: [198.51.100.51/24]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range cfg.Instances {
		got = append(got, in.VirtualMACInterface)
	}
	if want := []string{"vrrp.51", "vrrp6.51", "vmac51b", ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("virtual MAC interfaces %q, want %q", got, want)
	}
}

func TestVirtualMACErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"name without the feature", inst("    virtual_mac_interface: vm0"), []string{
			"vipd.yaml:7: instances[0].virtual_mac_interface: needs virtual_mac: true",
		}},
		{"same default name on two interfaces", doc(
			"instances:",
			"  - {name: a, interface: eth0, vrid: 51, vips: [192.0.2.50/24], virtual_mac: true}",
			"  - {name: b, interface: eth1, vrid: 51, vips: [198.51.100.50/24], virtual_mac: true}",
		), []string{
			`vipd.yaml:3: instances[1].virtual_mac_interface: virtual MAC interface vrrp.51 is already instance "a"'s (line 2): give one of them virtual_mac_interface`,
		}},
		{"an instance's interface", doc(
			"instances:",
			"  - {name: a, interface: eth0, vrid: 51, vips: [192.0.2.50/24], virtual_mac: true, virtual_mac_interface: eth1}",
			"  - {name: b, interface: eth1, vrid: 52, vips: [198.51.100.50/24]}",
		), []string{
			`vipd.yaml:2: instances[0].virtual_mac_interface: eth1 is an instance's interface; a virtual MAC interface is vipd's own, created and deleted with the instance`,
		}},
		{"bad name", inst("    virtual_mac: true", "    virtual_mac_interface: 'a/b'"), []string{
			`vipd.yaml:8: instances[0].virtual_mac_interface: "a/b" is not a valid interface name: it contains '/'`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.in, tt.want) })
	}
}
