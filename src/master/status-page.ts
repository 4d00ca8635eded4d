// The status page (the admin port's `/`) and `mkv status`'s text: one ClusterStatus (status.ts)
// shown two ways. The page is plain HTML, no script, refreshed by the browser every 10 s;
// everything from the index (keys above all) is escaped.
import type { ClusterStatus } from './status.js';

/** Bytes as people read them: 1.5 GiB, 312 MiB, 4 KiB, 17 B. */
export function bytesText(bytes: number | null): string {
  if (bytes === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

function rateText(rate: number | null): string {
  return rate === null ? '—' : `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`;
}

/** Disk figures older than this are shown with their age: the volume's nginx/disk-report has stopped. */
const DISK_STALE_SECONDS = 60;

function diskText(volume: ClusterStatus['volumes'][number]): string {
  if (volume.diskFree === null || volume.diskSize === null) return 'not reported';
  const stale = volume.diskAgeSeconds !== null && volume.diskAgeSeconds > DISK_STALE_SECONDS ? ` (${volume.diskAgeSeconds} s old)` : '';
  return `${bytesText(volume.diskFree)} of ${bytesText(volume.diskSize)}${stale}`;
}

/** The few facts an event line shows: its key, and what came with it that says most. */
function eventSummary(event: Record<string, unknown>): { key: string; cause: string } {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return { key: text(event.key), cause: [text(event.origin), text(event.client), text(event.who)].filter((part) => part !== '').join(' ') };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

export function statusPage(status: ClusterStatus): string {
  const h = (text: string | number) => escapeHtml(String(text));
  const row = (cells: Array<string | number>, attributes = '') =>
    `<tr${attributes}>${cells.map((cell) => `<td>${h(cell)}</td>`).join('')}</tr>`;
  const { keys, log, rates } = status;
  const down = status.volumes.filter((volume) => volume.state !== 'ok').length;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>mkv status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.n, th.n { text-align: right; } tr.down td { color: #b00; font-weight: bold; }
.muted { color: #777; }
</style>
</head>
<body>
<h1>mkv status <span class="muted">— ${h(status.master.version)}</span></h1>
<p id="summary">${h(status.volumes.length - down)} of ${h(status.volumes.length)} volumes up · ${h(keys.live)} live keys (${h(bytesText(keys.liveBytes))}) · log at seq ${h(log.lastSeq)}${status.master.readOnly ? ' · read-only' : ''}</p>

<h2>Volumes</h2>
<table id="volumes">
<tr><th>volume</th><th>state</th><th>disk free</th><th class="n">blobs</th><th class="n">bytes</th></tr>
${status.volumes
  .map((volume) =>
    row(
      [volume.volume, volume.state === 'ok' ? 'up' : `down: ${volume.state}`, diskText(volume), volume.blobs, bytesText(volume.bytes)],
      volume.state === 'ok' ? '' : ' class="down"',
    ),
  )
  .join('\n')}
</table>

<h2>Keys</h2>
<table id="keys">
<tr><th>live</th><th>unlinked</th><th>pending</th><th>deleting</th><th>unbalanced</th><th>live bytes</th></tr>
${row([keys.live, keys.unlinked, keys.pending, keys.deleting, keys.unbalanced, bytesText(keys.liveBytes)])}
</table>
<p class="muted">Counted at ${h(keys.at)} in ${h(keys.seconds.toFixed(2))} s (at most once a minute). Pending: writes in flight or never finished; unbalanced: live keys not where placement puts them now (mkv rebalance).</p>

<h2>Log</h2>
<table id="log">
<tr><th>where</th><td>${h(log.location)}</td></tr>
<tr><th>seq</th><td>${h(log.firstSeq)} to ${h(log.lastSeq)}</td></tr>
<tr><th>segments</th><td>${log.segments === null ? 'a JetStream stream' : `${h(log.segments)} (${h(bytesText(log.bytes))} on disk)`}</td></tr>
<tr><th>index behind the log</th><td>${h(log.lag)} events</td></tr>
<tr><th>writer</th><td>${h(log.writer)}</td></tr>
</table>

<h2>Requests</h2>
<table id="rates">
<tr><th>reads</th><th>writes</th><th>errors (5xx)</th></tr>
${row([rateText(rates.reads), rateText(rates.writes), rateText(rates.errors)])}
</table>
<p class="muted">${rates.over === null ? 'Measured from a few seconds after the master started.' : `Over the last ${h(rates.over)} s.`}</p>

<h2>Last events</h2>
<table id="events">
<tr><th class="n">seq</th><th>time</th><th>event</th><th>key</th><th>by</th></tr>
${status.recent
  .map((event) => {
    const { key, cause } = eventSummary(event);
    return row([Number(event.seq), String(event.time), String(event.type), key, cause]);
  })
  .join('\n')}
</table>
<p class="muted">As of ${h(status.time)}; master started ${h(status.master.startedAt)}. JSON: <a href="/status.json">/status.json</a>; Prometheus: <a href="/metrics">/metrics</a>.</p>
</body>
</html>
`;
}

/** The same, as `mkv status` prints it. */
export function statusText(status: ClusterStatus): string {
  const { keys, log, rates } = status;
  const lines: string[] = [];
  const table = (rows: string[][]) => {
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)));
    for (const cells of rows)
      lines.push(
        '  ' +
          cells
            .map((cell, column) => cell.padEnd(widths[column]!))
            .join('  ')
            .trimEnd(),
      );
  };
  lines.push(`${status.master.version}${status.master.readOnly ? ' (read-only)' : ''}, as of ${status.time}`);
  lines.push('', 'volumes');
  table([
    ['VOLUME', 'STATE', 'DISK FREE', 'BLOBS', 'BYTES'],
    ...status.volumes.map((volume) => [
      volume.volume,
      volume.state === 'ok' ? 'up' : `DOWN: ${volume.state}`,
      diskText(volume),
      String(volume.blobs),
      bytesText(volume.bytes),
    ]),
  ]);
  lines.push('', `keys (counted ${keys.at})`);
  table([
    ['LIVE', 'UNLINKED', 'PENDING', 'DELETING', 'UNBALANCED', 'LIVE BYTES'],
    [
      String(keys.live),
      String(keys.unlinked),
      String(keys.pending),
      String(keys.deleting),
      String(keys.unbalanced),
      bytesText(keys.liveBytes),
    ],
  ]);
  lines.push('', 'log');
  lines.push(
    `  ${log.location}: seq ${log.firstSeq} to ${log.lastSeq}` +
      (log.segments === null ? '' : `, ${log.segments} segments (${bytesText(log.bytes)} on disk)`),
  );
  lines.push(`  index ${log.lag} events behind; writer ${log.writer}`);
  lines.push(
    '',
    `requests${rates.over === null ? '' : ` (last ${rates.over} s)`}: reads ${rateText(rates.reads)}, writes ${rateText(rates.writes)}, errors ${rateText(rates.errors)}`,
  );
  lines.push('', 'last events');
  table([
    ['SEQ', 'TIME', 'EVENT', 'KEY', 'BY'],
    ...status.recent.map((event) => {
      const { key, cause } = eventSummary(event);
      return [String(event.seq), String(event.time), String(event.type), JSON.stringify(key).slice(1, -1), cause];
    }),
  ]);
  return lines.join('\n') + '\n';
}
