// The dashboard's pages, drawn from the JSON API under /dashboard/api and refreshed live.
//
// Every piece of data reaches the page through DOM text nodes and attribute setters, never
// through innerHTML, so model names, reasons and comments cannot inject markup.
(function () {
  'use strict';
  const T = window.I18N;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const view = document.getElementById('view');
  const REFRESH_MS = 5000;
  const PAGES = ['overview', 'models', 'quality', 'decisions', 'feedback'];

  const state = {
    page: pageFromPath(),
    window: '1h',
    quality: { window: '24h', axis: 'domain', metric: 'success_rate' },
    filters: { model: '', domain: '', language: '', source: '', outcome: '' },
    decisions: [],
    next: null,
    pagesLoaded: 1,
    selected: null,
    dirty: {},
    lastData: null,
    modelNames: [],
  };

  // ---------------------------------------------------------------- helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const t = (key, vars) => T.t(key, vars);

  function fmtNum(v, digits) {
    if (v == null || Number.isNaN(v)) return '–';
    return Number(v).toLocaleString(T.locale(), { maximumFractionDigits: digits == null ? 1 : digits });
  }
  function fmtInt(v) { return v == null ? '–' : Math.round(v).toLocaleString(T.locale()); }
  function fmtMs(v) { return v == null ? '–' : v >= 10000 ? `${fmtNum(v / 1000, 1)} s` : `${fmtInt(v)} ms`; }
  function fmtPct(v) { return v == null ? '–' : `${fmtNum(v * 100, v < 0.1 ? 2 : 1)}%`; }
  function fmtUsd(v) {
    if (v == null) return '–';
    const abs = Math.abs(v);
    const digits = abs >= 100 ? 2 : abs >= 1 ? 3 : abs >= 0.01 ? 4 : 6;
    return `$${Number(v).toFixed(digits)}`;
  }
  function fmtTime(ms) { return new Date(ms).toLocaleString(T.locale(), { hour12: false }); }
  function fmtClock(ms) {
    const d = new Date(ms);
    const long = ['7d', '30d'].includes(state.window);
    return long
      ? d.toLocaleDateString(T.locale(), { month: '2-digit', day: '2-digit' }) + ' ' + d.toLocaleTimeString(T.locale(), { hour: '2-digit', minute: '2-digit', hour12: false })
      : d.toLocaleTimeString(T.locale(), { hour: '2-digit', minute: '2-digit', hour12: false });
  }
  function stars(rating) { return rating ? '★'.repeat(rating) + '☆'.repeat(5 - rating) : ''; }

  function badge(text, kind) { return el('span', { class: `badge ${kind || ''}`, text }); }
  function availabilityBadge(a) {
    const kind = a === 'healthy' ? 'ok' : a === 'recovering' ? 'warn' : 'bad';
    return badge(t(`availability.${a}`), kind);
  }
  function circuitBadge(c) {
    const kind = c === 'closed' ? 'ok' : c === 'half_open' ? 'warn' : 'bad';
    return badge(t(`circuit.${c}`), kind);
  }
  function sourceBadge(s) { return badge(t(`source.${s}`), `src-${s}`); }
  function outcomeBadge(o) {
    if (!o) return badge(t('outcome.pending'), 'warn');
    const kind = o.status === 'ok' ? 'ok' : o.status === 'cancelled' ? 'warn' : 'bad';
    return badge(t(`outcome.${o.status}`), kind);
  }

  function toast(message, bad) {
    const node = el('div', { class: `toast ${bad ? 'bad' : ''}`, role: 'status', text: message });
    document.body.appendChild(node);
    setTimeout(() => node.remove(), 3500);
  }

  function select(id, options, value, onchange) {
    const node = el('select', { id, onchange: e => onchange(e.target.value) });
    for (const [v, label] of options) {
      const o = el('option', { value: v, text: label });
      if (v === value) o.selected = true;
      node.appendChild(o);
    }
    return node;
  }

  function windowSelect(id, value, onchange) {
    return select(id, ['15m', '1h', '6h', '24h', '7d', '30d'].map(w => [w, t(`window.${w}`)]), value, onchange);
  }

  function table(headers, rows, attrs) {
    const head = el('tr', {}, headers.map(h => el('th', { class: h.num ? 'num' : '', text: h.label || h })));
    return el('div', { class: 'table-wrap' }, el('table', attrs || {}, el('thead', {}, head), el('tbody', {}, rows)));
  }

  // ---------------------------------------------------------------- API

  async function api(path, options) {
    const response = await fetch(`/dashboard/api${path}`, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options));
    if (response.status === 401) {
      location.href = '/dashboard/login';
      throw new Error(t('error.session'));
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
    return body;
  }

  function post(path, body) {
    return api(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {}),
    });
  }

  // ---------------------------------------------------------------- pages

  const pages = {};

  // Overview --------------------------------------------------------------
  pages.overview = {
    load: () => api(`/overview?window=${encodeURIComponent(state.window)}`),
    render(d) {
      const tot = d.totals;
      const s = d.savings;
      const card = (id, label, value, note) =>
        el('div', { class: 'panel card', id }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), note ? el('div', { class: 'note', text: note }) : null);
      const cards = el('div', { class: 'grid cards' },
        card('kpi-requests', t('kpi.requests'), fmtInt(tot.requests), t(`window.${d.window}`)),
        card('kpi-rpm', t('kpi.rpm'), fmtNum(tot.rpm, 2)),
        card('kpi-p50', t('kpi.p50'), fmtMs(tot.latency_p50_ms)),
        card('kpi-p95', t('kpi.p95'), fmtMs(tot.latency_p95_ms)),
        card('kpi-errors', t('kpi.error_rate'), fmtPct(tot.error_rate), `${fmtInt(tot.errors)} ${t('kpi.errors')}`),
        card('kpi-tokens', t('kpi.tokens'), fmtInt(tot.input_tokens + tot.output_tokens), `${fmtInt(tot.input_tokens)} ${t('kpi.in')} · ${fmtInt(tot.output_tokens)} ${t('kpi.out')}`),
        card('kpi-cost', t('kpi.cost'), fmtUsd(tot.cost_usd)),
        card('kpi-saved', t('kpi.saved'), fmtUsd(s.saved_usd),
          s.strongest_model ? t('kpi.saved_note', { pct: fmtPct(s.saved_ratio), model: s.strongest_model, cost: fmtUsd(s.strongest_usd) }) : t('kpi.no_strongest')),
      );
      const x = d.series.map(p => p.start_ms);
      const chart = (id, title, series, format, options) => {
        const box = el('div', { class: 'chart-box', id });
        const panel = el('div', { class: 'panel' }, el('div', { class: 'chart-title', text: title }), box);
        requestAnimationFrame(() => window.Chart.line(box, Object.assign({ x, series, format, time: fmtClock, label: title }, options)));
        return panel;
      };
      const charts = el('div', { class: 'grid charts' },
        chart('chart-rpm', t('chart.rpm'), [{ name: t('kpi.rpm'), values: d.series.map(p => p.rpm), color: '#2f6fde' }], v => fmtNum(v, 1)),
        chart('chart-latency', t('chart.latency'), [
          { name: 'p50', values: d.series.map(p => p.latency_p50_ms), color: '#1f9d55' },
          { name: 'p95', values: d.series.map(p => p.latency_p95_ms), color: '#d98b0b' },
        ], v => fmtMs(v), { integer: true }),
        chart('chart-errors', t('chart.error_rate'), [{ name: t('kpi.error_rate'), values: d.series.map(p => p.error_rate), color: '#d64545' }], v => fmtPct(v)),
        chart('chart-tokens', t('chart.tokens'), [
          { name: t('kpi.in'), values: d.series.map(p => p.input_tokens), color: '#6a4bc4' },
          { name: t('kpi.out'), values: d.series.map(p => p.output_tokens), color: '#2f9fb0' },
        ], v => fmtInt(v), { integer: true }),
        chart('chart-cost', t('chart.cost'), [{ name: t('kpi.cost'), values: d.series.map(p => p.cost_usd), color: '#3b4250' }], v => fmtUsd(v),
          { axisFormat: v => (v === 0 ? '$0' : `$${Number(v.toPrecision(2))}`) }),
      );

      const counts = d.sources.counts;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const bars = el('div', { class: 'bars', id: 'sources' }, ['judge', 'policy', 'fallback', 'explicit'].map(src => {
        const n = counts[src] || 0;
        const fill = el('div', { class: 'fill' });
        fill.style.width = `${total ? (100 * n) / total : 0}%`;
        return el('div', { class: 'bar', 'data-source': src }, el('span', {}, sourceBadge(src)), el('div', { class: 'track' }, fill), el('span', { class: 'num', text: `${fmtInt(n)} · ${fmtPct(total ? n / total : null)}` }));
      }));
      const sources = el('div', { class: 'panel' },
        el('div', { class: 'chart-title', text: t('sources.title') }), bars,
        el('p', { class: 'muted', text: t('sources.since', { time: fmtTime(d.sources.since_ms) }) }));

      const j = d.judge;
      const judge = el('div', { class: 'panel', id: 'judge' }, el('div', { class: 'chart-title', text: t('judge.title') }),
        j == null
          ? el('p', { class: 'muted', id: 'judge-off', text: t('judge.off') })
          : el('dl', { class: 'detail' },
            el('dt', { text: t('judge.mode') }), el('dd', { text: `${j.mode} · ${j.model} · ${j.api}` }),
            el('dt', { text: t('judge.reachable') }), el('dd', {}, j.reachable == null ? badge(t('judge.unknown')) : badge(j.reachable ? t('yes') : t('no'), j.reachable ? 'ok' : 'bad')),
            el('dt', { text: t('judge.model_present') }), el('dd', {}, j.model_present == null ? badge(t('judge.unknown')) : badge(j.model_present ? t('yes') : t('no'), j.model_present ? 'ok' : 'bad')),
            el('dt', { text: t('judge.latency') }), el('dd', { text: `${fmtMs(j.mean_latency_ms)} (${t('judge.last')} ${fmtMs(j.last_latency_ms)}; ${t('judge.budget')} ${fmtMs(j.timeout_ms)})` }),
            el('dt', { text: t('judge.cache') }), el('dd', { text: `${fmtPct(j.cache_hit_rate)} · ${fmtInt(j.cache_entries)} ${t('judge.entries')}` }),
            el('dt', { text: t('judge.calls') }), el('dd', { text: t('judge.calls_note', { consulted: fmtInt(j.consulted), failures: fmtInt(j.failures), timeouts: fmtInt(j.timeouts), overrides: fmtInt(j.overrides) }) }),
            el('dt', { text: t('judge.in_flight') }), el('dd', { id: 'judge-in-flight', text: t('judge.in_flight_note', { in_flight: fmtInt(j.in_flight), allowed: fmtInt(j.allowed_in_flight), max: fmtInt(j.max_in_flight), busy: fmtInt(j.busy) }) }),
            j.paused ? [el('dt', { text: t('judge.paused') }), el('dd', {}, badge(t('yes'), 'warn'))] : null,
            j.last_error ? [el('dt', { text: t('judge.last_error') }), el('dd', { class: 'mono', text: j.last_error })] : null,
          ));
      const models = el('p', { class: 'muted', text: t('overview.models', { available: d.models.available, enabled: d.models.enabled, total: d.models.total }) });

      return [
        el('div', { class: 'toolbar' }, el('h2', { text: t('nav.overview') }), windowSelect('window', state.window, v => { state.window = v; refresh(); }), models),
        cards, charts, el('div', { class: 'grid two' }, sources, judge),
      ];
    },
  };

  // Models ----------------------------------------------------------------
  async function change(path, body, done) {
    try {
      await post(path, body);
      toast(done);
      await refresh();
    } catch (e) {
      toast(e.message, true);
    }
  }

  pages.models = {
    load: () => api('/models'),
    render(d) {
      state.modelNames = d.models.map(m => m.name);
      const rows = [];
      for (const m of d.models) {
        const enc = encodeURIComponent(m.name);
        const hour = m.last_hour;
        const calls = m.deployments.reduce((n, x) => n + x.calls, 0);
        const failures = m.deployments.reduce((n, x) => n + x.failures, 0);
        rows.push(el('tr', { class: 'model', 'data-model': m.name },
          el('td', {}, el('strong', { text: m.name }), ' ',
            el('span', { class: 'muted', text: t('models.price_note', { input: fmtNum(m.input_price, 2), output: fmtNum(m.output_price, 2) }) }),
            m.tags.length ? el('div', { class: 'muted', text: m.tags.join(', ') }) : null),
          el('td', {}, availabilityBadge(m.availability), ' ', m.enabled ? null : badge(t('models.disabled'), 'bad')),
          el('td', { class: 'num', text: fmtNum(m.weight, 2) }),
          el('td', { class: 'num', text: hour && hour.latency_p50_ms_max != null ? fmtMs(hour.latency_p50_ms_max) : '–' }),
          el('td', { class: 'num', text: `${fmtInt(calls)} / ${fmtInt(failures)}` }),
          el('td', { class: 'num', text: calls ? fmtPct(failures / calls) : '–' }),
          el('td', { class: 'num', text: hour ? t('models.hour_note', { n: fmtInt(hour.requests), ok: fmtPct(hour.success_rate) }) : t('models.hour_none') }),
          el('td', {}, el('div', { class: 'row-actions' },
            el('button', {
              type: 'button',
              class: m.enabled ? 'danger' : 'primary',
              'data-action': m.enabled ? 'disable-model' : 'enable-model',
              'data-model': m.name,
              text: m.enabled ? t('models.disable') : t('models.enable'),
              onclick: () => change(`/models/${enc}/enabled`, { enabled: !m.enabled }, t(m.enabled ? 'models.disabled_toast' : 'models.enabled_toast', { name: m.name })),
            }))),
        ));
        for (const dep of m.deployments) {
          const id = dep.id;
          const key = `w:${id}`;
          const input = el('input', {
            type: 'number', min: 0, step: 'any', class: 'weight', 'data-deployment': id, 'aria-label': t('models.weight'),
            value: key in state.dirty ? state.dirty[key] : String(dep.weight),
            oninput: e => { state.dirty[key] = e.target.value; },
            onkeydown: e => { if (e.key === 'Enter') save(); },
          });
          const save = () => {
            const weight = Number(input.value);
            delete state.dirty[key];
            change(`/deployments/${encodeURIComponent(id)}/weight`, { weight }, t('models.weight_toast', { id, weight: fmtNum(weight, 3) }));
          };
          const limitKey = `l:${id}`;
          const limitInput = el('input', {
            type: 'number', min: 1, step: 1, class: 'limit', 'data-deployment': id, 'aria-label': t('models.limit'),
            placeholder: t('models.no_limit'),
            value: limitKey in state.dirty ? state.dirty[limitKey] : (dep.max_in_flight == null ? '' : String(dep.max_in_flight)),
            oninput: e => { state.dirty[limitKey] = e.target.value; },
            onkeydown: e => { if (e.key === 'Enter') saveLimit(); },
          });
          const saveLimit = () => {
            const text = limitInput.value.trim();
            const limit = text === '' ? null : Number(text);
            delete state.dirty[limitKey];
            change(`/deployments/${encodeURIComponent(id)}/max_in_flight`, { max_in_flight: limit },
              limit == null ? t('models.limit_lifted_toast', { id }) : t('models.limit_toast', { id, n: fmtInt(limit) }));
          };
          rows.push(el('tr', { class: 'sub deployment', 'data-deployment': id },
            el('td', {}, el('span', { class: 'mono', text: id }), ' ', el('span', { class: 'muted', text: `${dep.provider} · ${dep.upstream_model}` })),
            el('td', {}, badge(dep.healthy ? t('models.healthy') : t('models.unhealthy'), dep.healthy ? 'ok' : 'bad'), ' ', circuitBadge(dep.circuit), dep.enabled ? null : [' ', badge(t('models.disabled'), 'bad')],
              dep.max_in_flight != null && dep.in_flight >= dep.max_in_flight ? [' ', badge(t('models.full'), 'warn')] : null),
            el('td', { class: 'num' }, input, ' ', el('button', { type: 'button', 'data-action': 'save-weight', 'data-deployment': id, text: t('models.save'), onclick: save })),
            el('td', { class: 'num', text: `${fmtMs(dep.latency_ms || null)}` }),
            el('td', { class: 'num' }, `${fmtInt(dep.calls)} / ${fmtInt(dep.failures)}`, ' ',
              el('span', { class: 'muted in-flight', text: dep.max_in_flight == null ? t('models.in_flight', { n: dep.in_flight }) : t('models.in_flight_of', { n: dep.in_flight, max: dep.max_in_flight }) }),
              ' ', limitInput, ' ', el('button', { type: 'button', 'data-action': 'save-limit', 'data-deployment': id, text: t('models.save'), onclick: saveLimit })),
            el('td', { class: 'num', text: fmtPct(dep.recent_error_ratio) }),
            el('td', { class: 'num muted', text: t('models.opened', { n: dep.circuit_opened }) }),
            el('td', {}, el('div', { class: 'row-actions' },
              el('button', {
                type: 'button', 'data-action': dep.enabled ? 'disable-deployment' : 'enable-deployment', 'data-deployment': id,
                text: dep.enabled ? t('models.disable') : t('models.enable'),
                onclick: () => change(`/deployments/${encodeURIComponent(id)}/enabled`, { enabled: !dep.enabled }, t(dep.enabled ? 'models.disabled_toast' : 'models.enabled_toast', { name: id })),
              }),
              el('button', {
                type: 'button', 'data-action': 'reset-circuit', 'data-deployment': id, text: t('models.reset'),
                disabled: dep.circuit === 'closed',
                onclick: () => change(`/deployments/${encodeURIComponent(id)}/reset-circuit`, {}, t('models.reset_toast', { id })),
              }))),
          ));
        }
      }
      const headers = [t('models.model'), t('models.health'), { label: t('models.weight'), num: true }, { label: t('models.latency'), num: true },
        { label: t('models.calls'), num: true }, { label: t('models.error_rate'), num: true }, { label: t('models.last_hour'), num: true }, ''];
      const audit = d.audit.length
        ? table([t('audit.time'), t('audit.actor'), t('audit.action'), t('audit.target'), t('audit.detail')],
          d.audit.map(a => el('tr', { class: 'audit' },
            el('td', { text: fmtTime(a.created_at_ms) }), el('td', { text: a.actor }), el('td', {}, badge(t(`audit.${a.action}`) || a.action)),
            el('td', { class: 'mono', text: a.target || '' }), el('td', { class: 'mono', text: a.detail || '' }))), { id: 'audit' })
        : el('p', { class: 'empty', id: 'audit-empty', text: t('audit.empty') });
      return [
        el('h2', { text: t('nav.models') }), el('p', { class: 'muted', text: t('models.note') }),
        table(headers, rows, { id: 'models' }),
        el('h2', { text: t('audit.title') }), audit,
      ];
    },
  };

  // Routing quality -------------------------------------------------------
  function heatColor(value, metric) {
    // Success rate and quality: red → amber → green; ratings map 1..5 onto the same.
    let f = metric === 'mean_rating' ? (value - 1) / 4 : value;
    f = Math.max(0, Math.min(1, f));
    return `hsl(${Math.round(f * 120)}, 62%, ${92 - f * 22}%)`;
  }

  function heatmap(id, models, keys, cells, metric, label) {
    const lookup = new Map(cells.map(c => [`${c.model}\u0000${c.key}`, c]));
    const maxRequests = Math.max(1, ...cells.map(c => c.requests || 0));
    const rows = models.map(m => el('tr', { 'data-model': m }, el('th', { text: m }), keys.map(k => {
      const c = lookup.get(`${m}\u0000${k}`);
      let value = c ? c[metric] : null;
      const td = el('td', { class: 'cell', 'data-key': k });
      if (value == null) {
        td.classList.add('none');
        td.textContent = '·';
        return td;
      }
      if (metric === 'requests') {
        td.style.background = `rgba(47, 111, 222, ${0.08 + 0.6 * (value / maxRequests)})`;
        td.append(fmtInt(value));
      } else {
        td.style.background = heatColor(value, metric);
        td.append(metric === 'mean_rating' ? fmtNum(value, 2) : metric === 'quality' ? fmtNum(value, 2) : fmtPct(value));
        const n = c.requests != null ? c.requests : c.evidence;
        td.append(el('small', { text: metric === 'mean_rating' ? `n=${fmtInt(c.feedback)}` : metric === 'quality' ? `w=${fmtNum(n, 1)}` : `n=${fmtInt(n)}` }));
      }
      td.title = label;
      return td;
    })));
    const head = el('tr', {}, el('th', { text: t('col.model') }), keys.map(k => el('th', { class: 'key', text: t(`key.${k}`) || k })));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'heat', id }, el('thead', {}, head), el('tbody', {}, rows)));
  }

  pages.quality = {
    load: () => api(`/quality?window=${encodeURIComponent(state.quality.window)}`),
    render(d) {
      const q = state.quality;
      const axis = q.axis;
      const cells = axis === 'domain' ? d.by_domain : d.by_language;
      const learned = axis === 'domain' ? d.learned.by_domain : d.learned.by_language;
      const all = axis === 'domain' ? d.domains : d.languages;
      const used = new Set([...cells.map(c => c.key), ...learned.map(c => c.key)]);
      // Every domain always; of the thirteen languages only those seen (and en, zh).
      const shown = axis === 'domain' ? all : all.filter(k => used.has(k) || k === 'en' || k === 'zh');
      const keys = shown.concat(used.has('none') ? ['none'] : []);
      const models = Array.from(new Set([...d.models, ...cells.map(c => c.model), ...learned.map(c => c.model)]));
      const metricLabel = t(`metric.${q.metric}`);
      return [
        el('div', { class: 'toolbar' },
          el('h2', { text: t('nav.quality') }),
          windowSelect('quality-window', q.window, v => { q.window = v; refresh(); }),
          select('quality-axis', [['domain', t('quality.by_domain')], ['language', t('quality.by_language')]], axis, v => { q.axis = v; rerender(); }),
          select('quality-metric', ['requests', 'success_rate', 'mean_rating'].map(m => [m, t(`metric.${m}`)]), q.metric, v => { q.metric = v; rerender(); })),
        el('div', { class: 'panel' },
          el('div', { class: 'chart-title', text: `${t('quality.measured')} — ${metricLabel}` }),
          cells.length ? heatmap('heat-measured', models, keys, cells, q.metric, metricLabel) : el('p', { class: 'empty', text: t('quality.empty') }),
          el('div', { class: 'legend' }, t('legend.low'), ...[0, 0.25, 0.5, 0.75, 1].map(f => { const s = el('span', { class: 'swatch' }); s.style.background = heatColor(f, 'success_rate'); return s; }), t('legend.high'))),
        el('h2', { text: t('quality.learned') }),
        el('div', { class: 'panel' },
          el('p', { class: 'muted', text: t('quality.learned_note') }),
          learned.length ? heatmap('heat-learned', models, keys, learned, 'quality', t('metric.quality')) : el('p', { class: 'empty', text: t('quality.learned_empty') })),
      ];
    },
  };

  // Decisions -------------------------------------------------------------
  function decisionQuery(before) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
    params.set('limit', '50');
    if (before) params.set('before', before);
    return `/decisions?${params}`;
  }

  pages.decisions = {
    async load() {
      if (!state.modelNames.length) {
        try { state.modelNames = (await api('/models')).models.map(m => m.name); } catch (_) { /* filters still work by typing */ }
      }
      // A refresh reloads the first page only; pages added with "more" stay until filters change.
      const first = await api(decisionQuery(null));
      if (state.pagesLoaded > 1 && state.decisions.length) {
        const known = new Set(first.decisions.map(x => x.id));
        const rest = state.decisions.filter(x => !known.has(x.id) && x.received_at_ms <= (first.decisions.at(-1) || {}).received_at_ms);
        return { decisions: first.decisions.concat(rest), next: state.next };
      }
      return first;
    },
    render(d) {
      state.decisions = d.decisions;
      state.next = d.next;
      const f = state.filters;
      const setFilter = k => v => { f[k] = v; state.pagesLoaded = 1; state.selected = null; refresh(); };
      const filters = el('div', { class: 'toolbar', id: 'filters' },
        el('h2', { text: t('nav.decisions') }),
        select('filter-model', [['', t('filter.all_models')], ...state.modelNames.map(m => [m, m])], f.model, setFilter('model')),
        select('filter-domain', [['', t('filter.all_domains')], ...['code', 'math', 'reasoning', 'writing', 'translation', 'text_processing', 'knowledge', 'chat'].map(k => [k, t(`key.${k}`)])], f.domain, setFilter('domain')),
        select('filter-language', [['', t('filter.all_languages')], ...['en', 'zh', 'ja', 'ko', 'fr', 'de', 'es', 'it', 'pt', 'nl', 'ru', 'other', 'und'].map(k => [k, t(`key.${k}`)])], f.language, setFilter('language')),
        select('filter-source', [['', t('filter.all_sources')], ...['judge', 'policy', 'fallback', 'explicit'].map(k => [k, t(`source.${k}`)])], f.source, setFilter('source')),
        select('filter-outcome', [['', t('filter.all_outcomes')], ...['ok', 'error', 'cancelled', 'pending'].map(k => [k, t(`outcome.${k}`)])], f.outcome, setFilter('outcome')));
      const rows = d.decisions.map(x => {
        const answered = x.outcome && x.outcome.model && x.outcome.model !== x.chosen_model ? ` → ${x.outcome.model}` : '';
        const row = el('tr', { class: `clickable decision ${state.selected === x.id ? 'selected' : ''}`, 'data-id': x.id, onclick: () => { state.selected = x.id; rerender(); } },
          el('td', { text: fmtTime(x.received_at_ms) }),
          el('td', {}, el('strong', { text: x.chosen_model }), answered),
          el('td', {}, sourceBadge(x.source)),
          el('td', { text: t(`key.${x.domain}`) || x.domain || '–' }),
          el('td', { text: x.language || '–' }),
          el('td', { text: x.complexity ? t(`band.${x.complexity}`) : '–' }),
          el('td', {}, outcomeBadge(x.outcome)),
          el('td', { class: 'num', text: x.outcome ? fmtMs(x.outcome.latency_ms) : '–' }),
          el('td', { class: 'num', text: x.outcome ? fmtUsd(x.outcome.cost_usd) : '–' }),
          el('td', { class: 'stars', text: x.feedback ? stars(x.feedback.rating) || fmtNum(x.feedback.score, 2) : '' }));
        return row;
      });
      const list = d.decisions.length
        ? table([t('dec.time'), t('dec.model'), t('dec.source'), t('dec.domain'), t('dec.language'), t('dec.complexity'), t('dec.outcome'), { label: t('dec.latency'), num: true }, { label: t('dec.cost'), num: true }, t('dec.feedback')], rows, { id: 'decisions' })
        : el('p', { class: 'empty', id: 'decisions-empty', text: t('dec.empty') });
      const more = d.next
        ? el('button', { type: 'button', id: 'more', text: t('dec.more'), onclick: async () => {
          try {
            const page = await api(decisionQuery(d.next));
            state.pagesLoaded += 1;
            draw({ decisions: state.decisions.concat(page.decisions), next: page.next });
          } catch (e) { toast(e.message, true); }
        } })
        : null;
      const chosen = d.decisions.find(x => x.id === state.selected);
      return [filters, list, more, chosen ? detail(chosen) : null];
    },
  };

  function detail(x) {
    const o = x.outcome;
    const fb = x.feedback;
    const feat = x.features || {};
    const ranking = Array.isArray(x.ranking) ? x.ranking : [];
    const rankTable = table([t('rank.n'), t('rank.model'), { label: t('rank.utility'), num: true }, { label: t('rank.quality'), num: true }, { label: t('rank.cost'), num: true }, { label: t('rank.latency'), num: true }, { label: t('rank.evidence'), num: true }],
      ranking.map((r, i) => el('tr', {}, el('td', { text: String(i + 1) }), el('td', { text: r.model }), el('td', { class: 'num', text: fmtNum(r.utility, 3) }),
        el('td', { class: 'num', text: fmtNum(r.estimate && r.estimate.quality, 3) }), el('td', { class: 'num', text: fmtUsd(r.estimate && r.estimate.cost_usd) }),
        el('td', { class: 'num', text: fmtMs(r.estimate && r.estimate.latency_ms) }), el('td', { class: 'num', text: fmtNum(r.estimate && r.estimate.evidence, 1) }))), { id: 'ranking' });
    const lang = feat.language ? `${feat.language.primary}${feat.language.secondary ? ' + ' + feat.language.secondary : ''} (${fmtNum(feat.language.confidence, 2)})` : x.language;
    const dom = feat.domain ? `${feat.domain.domain} (${fmtNum(feat.domain.confidence, 2)})` : x.domain;
    return el('div', { class: 'panel detail', id: 'decision-detail', 'data-id': x.id },
      el('div', { class: 'chart-title', text: t('detail.title') }),
      el('dl', {},
        el('dt', { text: t('detail.id') }), el('dd', { class: 'mono', text: x.id }),
        el('dt', { text: t('detail.requested') }), el('dd', { text: `${x.requested_model} · ${x.api}${x.stream ? ' · stream' : ''}${x.profile ? ' · ' + x.profile : ''}` }),
        el('dt', { text: t('detail.reason') }), el('dd', { id: 'detail-reason', text: x.reason }),
        el('dt', { text: t('detail.source') }), el('dd', {}, sourceBadge(x.source), ` ${fmtInt(x.decision_us)} µs`),
        el('dt', { text: t('dec.language') }), el('dd', { text: lang || '–' }),
        el('dt', { text: t('dec.domain') }), el('dd', { text: dom || '–' }),
        el('dt', { text: t('dec.complexity') }), el('dd', { text: feat.complexity ? `${feat.complexity.band} (${fmtNum(feat.complexity.score, 2)})` : x.complexity || '–' }),
        x.prompt && x.prompt.text ? [el('dt', { text: t(`detail.prompt_${x.prompt.kind}`) }), el('dd', { class: 'comment mono', text: x.prompt.text })] : null,
        el('dt', { text: t('detail.outcome') }), el('dd', {}, outcomeBadge(o), o ? ` HTTP ${o.http_status} · ${o.deployment || '–'} · ${fmtMs(o.latency_ms)}${o.ttft_ms != null ? ` · TTFT ${fmtMs(o.ttft_ms)}` : ''} · ${fmtInt(o.input_tokens)}/${fmtInt(o.output_tokens)} tok · ${fmtUsd(o.cost_usd)}` : ''),
        o && o.error_message ? [el('dt', { text: t('detail.error') }), el('dd', { class: 'mono', text: `${o.error_kind || ''}: ${o.error_message}` })] : null,
        o && o.attempts && o.attempts.length ? [el('dt', { text: t('detail.attempts') }), el('dd', { class: 'mono', text: o.attempts.map(a => `${a.deployment} ${a.error_kind || 'ok'} ${a.duration_ms} ms`).join(' → ') })] : null,
        el('dt', { text: t('detail.feedback') }), el('dd', {}, fb ? [el('span', { class: 'stars', text: stars(fb.rating) }), ` ${fmtNum(fb.score, 2)} `, fb.comment ? el('div', { class: 'comment', text: fb.comment }) : null] : t('detail.no_feedback')),
      ),
      el('h2', { text: t('detail.ranking') }), rankTable,
      el('h2', { text: t('detail.features') }), el('pre', { class: 'mono', text: JSON.stringify(x.features, null, 2) }));
  }

  // Feedback --------------------------------------------------------------
  pages.feedback = {
    load: () => api('/feedback?limit=200'),
    render(d) {
      const rows = d.feedback.map(f => el('tr', { class: 'feedback', 'data-id': f.feedback.decision_id },
        el('td', { text: fmtTime(f.feedback.created_at_ms) }),
        el('td', { class: 'stars', text: stars(f.feedback.rating) }),
        el('td', { class: 'num', text: fmtNum(f.feedback.score, 2) }),
        el('td', { text: f.model || '–' }),
        el('td', { text: f.domain ? t(`key.${f.domain}`) || f.domain : '–' }),
        el('td', { text: f.language || '–' }),
        el('td', { class: 'comment', text: f.feedback.comment || '' }),
        el('td', { class: 'mono muted', text: f.feedback.decision_id })));
      return [
        el('h2', { text: t('nav.feedback') }),
        d.feedback.length
          ? table([t('fb.time'), t('fb.rating'), { label: t('fb.score'), num: true }, t('fb.model'), t('dec.domain'), t('dec.language'), t('fb.comment'), t('fb.decision')], rows, { id: 'feedback' })
          : el('p', { class: 'empty', id: 'feedback-empty', text: t('fb.empty') }),
      ];
    },
  };

  // ---------------------------------------------------------------- shell

  function pageFromPath() {
    const name = location.pathname.replace(/^\/dashboard\/?/, '').split('/')[0];
    return PAGES.includes(name) ? name : 'overview';
  }

  function markNav() {
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === state.page && a.tagName === 'A' && !a.classList.contains('brand'));
    for (const b of document.querySelectorAll('[data-lang]')) b.classList.toggle('on', b.dataset.lang === T.lang());
    for (const n of document.querySelectorAll('[data-i18n]')) n.textContent = t(n.dataset.i18n);
    document.documentElement.lang = T.lang();
    document.title = `${t(`nav.${state.page}`)} · llm-router`;
  }

  // Replaces the view, keeping focus and the caret in an input that was being edited.
  function draw(data) {
    state.lastData = data;
    const active = document.activeElement;
    const focusKey = active && view.contains(active) ? active.id || active.dataset.deployment : null;
    const nodes = pages[state.page].render(data);
    view.replaceChildren(...[].concat(nodes).filter(Boolean));
    view.dataset.page = state.page;
    view.dataset.loaded = String(Date.now());
    if (focusKey) {
      const again = document.getElementById(focusKey) || view.querySelector(`input[data-deployment="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
  }

  function rerender() {
    if (state.lastData) draw(state.lastData);
  }

  let loading = null;
  async function refresh() {
    const page = state.page;
    const run = (async () => {
      try {
        const data = await pages[page].load();
        if (page !== state.page) return;
        draw(data);
        document.getElementById('live').classList.remove('stale');
      } catch (e) {
        document.getElementById('live').classList.add('stale');
        if (!state.lastData || view.dataset.page !== page) {
          view.replaceChildren(el('div', { class: 'error-box', text: `${t('error.load')}: ${e.message}` }));
        }
      }
    })();
    loading = run;
    return run;
  }

  function go(page, push) {
    if (!PAGES.includes(page)) page = 'overview';
    if (push) history.pushState({ page }, '', `/dashboard/${page}`);
    state.page = page;
    state.lastData = null;
    markNav();
    view.replaceChildren(el('p', { class: 'muted', text: t('loading') }));
    return refresh();
  }

  document.addEventListener('click', e => {
    const a = e.target.closest('a[data-nav]');
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      go(a.dataset.nav, true);
    }
  });
  window.addEventListener('popstate', () => go(pageFromPath(), false));
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => { T.set(b.dataset.lang); markNav(); rerender(); });
  }
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await fetch('/dashboard/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrf } });
    } catch (_) { /* logged out either way */ }
    location.href = '/dashboard/login';
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(rerender, 200); });
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);

  markNav();
  go(state.page, false);
})();
