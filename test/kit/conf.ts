// postgresql.conf and pg_hba.conf as the kit writes them: the same as `walrewind demo`'s clusters,
// whose module this is (src/demo/conf.ts). Settings are appended, so the last occurrence wins.

export { BASE_HBA, BASE_SETTINGS, formatSetting, formatSettings, type Settings } from '../../src/demo/conf.js'
