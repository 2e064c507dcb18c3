package keepalived

// Why keepalived settings that vipd cannot express are not converted, by
// keyword, for the keywords without a row in keywords.go. A keyword
// missing from both gets a generic reason.

const (
	noEmail        = "vipd sends no email; use a notify command"
	onlyOnMaster   = "vipd announces the VIPs when it becomes master, and every announce.refresh while master, on no other event"
	noFIFO         = "vipd has no notify FIFO; notify.command gets the same fields (INSTANCE, name, state, priority) as arguments"
	procSetting    = "a keepalived process setting with no vipd equivalent (set scheduling and limits in the systemd unit)"
	noScripts      = "vipd runs checks and notify commands as its own user (the unprivileged user vipd under the shipped unit, without capabilities); make sure each command is safe to run as that user"
	lvs            = "vipd balances with nftables, not IPVS (LVS), and only what a virtual_server block says: one address and port each"
	noStatic       = "vipd adds only what follows the Master (VIPs, routes, rules); configure static addresses, routes and rules in the OS network configuration"
	noStaticRoutes = "keepalived keeps static routes and rules whatever the VRRP state, and vipd leaves them to the OS: configure them in its network configuration (only virtual_routes and virtual_rules, which follow the Master, convert to routes and rules)"
	// For keywords that have a row in keywords.go, which says these.
	excludedVIPs = "vipd advertises every VIP it adds; add these to vips only once no keepalived host is left (the address lists in adverts must match), or to a second instance"
)

var topReasons = map[string]string{
	"virtual_server_group":     "vipd balances one address and port per virtual server: a virtual_server group is not converted, give each member its own virtual_servers entry",
	"real_server":              "a real_server belongs in a virtual_server block",
	"SSL":                      "vipd's https checks verify with the system's CAs or check.http.ca_file, and present no client certificate",
	"static_ipaddress":         noStatic,
	"static_routes":            noStaticRoutes,
	"static_rules":             noStaticRoutes,
	"track_group":              noStatic,
	"track_file":               "vipd has no file tracking; use an exec check that tests the file",
	"vrrp_track_file":          "vipd has no file tracking; use an exec check that tests the file",
	"vrrp_track_process":       "vipd has no process tracking; use an exec check such as [pidof, NAME]",
	"bfd_instance":             "vipd has no BFD",
	"garp_group":               "vipd has no per-interface gratuitous ARP limits; see announce in each instance",
	"linkbeat_interfaces":      "vipd follows link state through netlink only",
	"interface_up_down_delays": "vipd does not debounce link changes",
	"net_namespace":            "vipd runs in the network namespace it is started in (use ip netns exec or the unit's NetworkNamespacePath=)",
	"net_namespace_ipvs":       lvs,
	"namespace_with_ipsets":    procSetting,
	"instance":                 procSetting,
	"use_pid_dir":              procSetting,
	"linkbeat_use_polling":     "vipd follows link state through netlink only",
	"child_wait_time":          procSetting,
}

var globalReasons = map[string]string{
	"router_id":                    "vipd has no router id (keepalived uses it in emails and SNMP)",
	"notification_email":           noEmail,
	"notification_email_from":      noEmail,
	"smtp_server":                  noEmail,
	"smtp_helo_name":               noEmail,
	"smtp_connect_timeout":         noEmail,
	"smtp_alert":                   noEmail,
	"smtp_alert_vrrp":              noEmail,
	"smtp_alert_checker":           noEmail,
	"no_email_faults":              noEmail,
	"vrrp_strict":                  "vipd has no strict mode: it allows unicast peers and, with version 2, passwords, which strict mode forbids; the checks RFC 9568 requires of adverts it always makes",
	"vrrp_mcast_group4":            "vipd always uses the standard group 224.0.0.18; keepalived hosts on another group cannot hear vipd",
	"vrrp_mcast_group6":            "vipd always uses the standard group ff02::12; keepalived hosts on another group cannot hear vipd",
	"vrrp_skip_check_adv_addr":     "vipd has no such option",
	"vrrp_garp_lower_prio_delay":   onlyOnMaster,
	"vrrp_garp_lower_prio_repeat":  onlyOnMaster,
	"vrrp_garp_extra_if":           onlyOnMaster,
	"vrrp_lower_prio_no_advert":    "vipd has no such option",
	"vrrp_higher_prio_send_advert": "vipd has no such option",
	"vrrp_down_timer_adverts":      "vipd uses RFC 9568's 3 intervals plus skew; all routers of a group must agree, so return the keepalived hosts to the default before mixing",
	"vrrp_startup_delay":           "vipd has no startup delay",
	"enable_script_security":       noScripts,
	"script_user":                  noScripts,
	"notify_fifo":                  noFIFO,
	"notify_fifo_script":           noFIFO,
	"vrrp_notify_fifo":             noFIFO,
	"vrrp_notify_fifo_script":      noFIFO,
	"vrrp_notify_priority_changes": noFIFO,
	"enable_snmp_vrrp":             "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_snmp_checker":          "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_snmp_rfc":              "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_snmp_rfcv2":            "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_snmp_rfcv3":            "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_traps":                 "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"snmp_socket":                  "vipd exports Prometheus metrics (metrics.listen), not SNMP",
	"enable_dbus":                  "vipd answers on its control socket (vipd status), not D-Bus",
	"dbus_service_name":            "vipd answers on its control socket (vipd status), not D-Bus",
	"vrrp_iptables":                "vipd installs no firewall rules",
	"vrrp_ipsets":                  "vipd installs no firewall rules",
	"nftables":                     "vipd installs no firewall rules",
	"vrrp_priority":                procSetting,
	"vrrp_rt_priority":             procSetting,
	"vrrp_no_swap":                 procSetting,
	"vrrp_cpu_affinity":            procSetting,
	"vrrp_rlimit_rttime":           procSetting,
	"max_auto_priority":            procSetting,
	"min_auto_priority_delay":      procSetting,
	"default_interface":            "vipd puts every VIP on its instance's interface",
	"dynamic_interfaces":           "vipd has no such option",
}

var groupReasons = map[string]string{
	"smtp_alert":      noEmail,
	"global_tracking": "vipd has no such option: a sync group member's tracking moves the whole group by FAULT",
	"track_bfd":       "vipd has no BFD",
	"track_file":      "vipd has no file tracking; use an exec check that tests the file",
	"track_process":   "vipd has no process tracking; use an exec check such as [pidof, NAME]",
	"notify_fifo":     noFIFO,
}

var instanceReasons = map[string]string{
	"vmac_xmit_base":             "vipd sends a Master's adverts from its virtual MAC interface (keepalived's default), never from the parent",
	"use_vmac_addr":              "vipd's virtual MAC interface always carries the virtual router MAC",
	"use_ipvlan":                 "vipd creates no ipvlan interfaces; the VIPs go on the instance's interface",
	"dont_track_primary":         "vipd always tracks the instance's own interface: the instance is in FAULT while it is down",
	"no_accept":                  "vipd always accepts traffic to its VIPs: they are ordinary addresses on the interface",
	"track_file":                 "vipd has no file tracking; use an exec check that tests the file",
	"track_process":              "vipd has no process tracking; use an exec check such as [pidof, NAME]",
	"track_bfd":                  "vipd has no BFD",
	"track_src_ip":               "vipd has no source address tracking",
	"mcast_dst_ip":               "vipd always uses the standard groups 224.0.0.18 and ff02::12; keepalived hosts on another group cannot hear vipd",
	"smtp_alert":                 noEmail,
	"notify_master_rx_lower_pri": "vipd has no such hook",
	"notify_deleted":             "vipd has no such hook",
	"notify_priority_changes":    noFIFO,
	"garp_lower_prio_delay":      onlyOnMaster,
	"garp_lower_prio_repeat":     onlyOnMaster,
	"garp_extra_if":              onlyOnMaster,
	"lower_prio_no_advert":       "vipd has no such option",
	"higher_prio_send_advert":    "vipd has no such option",
	"down_timer_adverts":         "vipd uses RFC 9568's 3 intervals plus skew; all routers of a group must agree, so return the keepalived hosts to the default before mixing",
	"skip_check_adv_addr":        "vipd has no such option",
	"strict_mode":                "vipd has no strict mode",
	"unicast_fault_no_peer":      "vipd has no such option: without unicast_peers it uses multicast",
	"unicast_ttl":                "vipd sends adverts with TTL 255, as the RFCs require, and drops any received with less",
	"kernel_rx_buf_size":         "vipd has no such option",
	"linkbeat_use_polling":       "vipd follows link state through netlink only",
	"promote_secondaries":        "vipd does not change the interface's promote_secondaries setting (sysctl net.ipv4.conf.IF.promote_secondaries)",
	"vrf":                        "vipd has no VRF support",
	"debug":                      "use vipd run --log-level debug",
}

// Instance keywords that need only a comment: vipd does the same anyway.
var instanceSame = map[string]string{
	"accept":            "vipd always accepts traffic to its VIPs",
	"native_ipv6":       "the VIPs decide the address family, in vipd as in keepalived",
	"check_unicast_src": "vipd always drops unicast adverts whose source is not in unicast_peers",
	"preempt":           "preemption is vipd's default",
}
