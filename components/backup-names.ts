/**
 * Names the pre-deploy backup shares with `npm run restore`; kept free of
 * provider imports so the restore command does not load the Docker SDK.
 */

/** The Docker volume holding a stack's Postgres dumps (`docker volume ls`): the `backup` component's data volume. */
export const backupVolumeName = (stack: string) => `appstack-${stack}-backup-data`;

/** Where the backup job mounts that volume. */
export const BACKUP_DIR = "/backups";

/** Dumps are `pg_dump --format=custom` files: `<stack>_<release>_<UTC time>.dump`. */
export const BACKUP_SUFFIX = ".dump";

/** A backup name as `restore --backup` takes it: a file name in the volume (a scheduled dump's under `scheduled/`), no other path. */
export const BACKUP_NAME = /^(?:scheduled\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** File-name-safe form of a release for the dump's name. */
export const releaseSlug = (release: string) => release.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 64) || "unversioned";

/** The container names of a stack's backup services: fixed, so `status`, the restore and the runbook can name them. */
export const backupContainerNames = (stack: string) => ({ schedule: `appstack-${stack}-backup-schedule`, offsite: `appstack-${stack}-backup-offsite` });
