package main

import (
	"context"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notifySystemd speaks systemd's notify protocol when NOTIFY_SOCKET is set
// (Type=notify): READY=1 once ready is closed (vipd run closes it once the
// control socket, and the metrics listener if any, listen and the daemon
// has started every instance), then, when WatchdogSec is set, WATCHDOG=1
// every half period, but only while ping answers (every protocol loop
// does), so that systemd restarts a wedged daemon. It returns when ctx is
// done, after sending STOPPING=1 if it sent READY=1.
func notifySystemd(ctx context.Context, ready <-chan struct{}, ping func(context.Context) error, log *slog.Logger) {
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY failed", "err", err)
	} else if ok {
		log.Debug("told systemd we are ready")
	}
	defer sd.SdNotify(false, sd.SdNotifyStopping)

	period, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable", "err", err)
	}
	if period <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(period / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, period/2)
			err := ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					log.Error("not feeding the systemd watchdog", "err", err)
				}
				continue
			}
			if _, err := sd.SdNotify(false, sd.SdNotifyWatchdog); err != nil {
				log.Warn("sd_notify WATCHDOG failed", "err", err)
			}
		}
	}
}
