package main

// wakeFloorCmd is the hidden subcommand the reliability part runs beside
// the daemons' single-instance scenarios, in the Master's node:
// "vipd-lab wake-floor -interval D -to ADDR:PORT".
const wakeFloorCmd = "wake-floor"
