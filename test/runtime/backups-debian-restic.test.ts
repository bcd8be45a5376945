import { backupSuite, debianRestic } from "./backup-suite";

// What .ci/run installs from Debian (restic 0.14 on bookworm): older than the shipper's image.
backupSuite(debianRestic());
