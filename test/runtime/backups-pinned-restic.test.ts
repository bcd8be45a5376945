import { backupSuite, pinnedRestic } from "./backup-suite";

// The restic the shipper's image runs (RESTIC_IMAGE), built from its Go module by test/runtime/setup/restic.sh.
backupSuite(pinnedRestic());
