// A tiny line-chart drawer for the dashboard: SVG, no dependencies, nothing fetched.
//
//   Chart.line(container, {
//     x: [epochMs, ...],
//     series: [{ name: 'p50', values: [number|null, ...], color: '#2f6fde' }],
//     format: v => v.toFixed(1),        // y values in the tooltip (and the axis)
//     axisFormat: v => v.toFixed(0),    // y axis labels, if they need a shorter form
//     integer: true,                    // whole-number steps (counts, milliseconds)
//     time: t => '12:30',               // x values
//   });
//
// Gaps (null) break the line. Hovering shows every series' value at the nearest point.
(function () {
  'use strict';
  const NS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // Round step sizes (1, 2, 2.5, 5 × 10^n) so axis labels read well.
  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (raw <= m * mag) return m * mag;
    }
    return 10 * mag;
  }

  let tip = null;
  function tooltip() {
    if (!tip) {
      tip = document.createElement('div');
      tip.className = 'chart-tip';
      tip.hidden = true;
      document.body.appendChild(tip);
    }
    return tip;
  }

  function line(container, spec) {
    const width = Math.max(280, container.clientWidth || 600);
    const height = spec.height || 190;
    const pad = { left: 58, right: 12, top: 10, bottom: 24 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const xs = spec.x || [];
    const n = xs.length;
    const format = spec.format || (v => String(v));
    const axisFormat = spec.axisFormat || format;
    const time = spec.time || (t => new Date(t).toLocaleTimeString());

    let max = 0;
    for (const s of spec.series) for (const v of s.values) if (v != null && v > max) max = v;
    if (max <= 0) max = 1;
    let step = niceStep(max, 4);
    if (spec.integer) step = Math.max(1, Math.round(step));
    const top = Math.ceil(max / step) * step;

    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img' });
    if (spec.label) root.setAttribute('aria-label', spec.label);
    const x = i => pad.left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
    const y = v => pad.top + plotH - (v / top) * plotH;

    for (let v = 0; v <= top + step / 2; v += step) {
      root.appendChild(svg('line', { class: v === 0 ? 'axis' : 'grid-line', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
      const label = svg('text', { x: pad.left - 6, y: y(v) + 3.5, 'text-anchor': 'end' });
      label.textContent = axisFormat(v);
      root.appendChild(label);
    }
    const ticks = Math.min(5, n);
    for (let k = 0; k < ticks; k++) {
      const i = ticks === 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
      const label = svg('text', { x: x(i), y: height - 6, 'text-anchor': k === 0 ? 'start' : k === ticks - 1 ? 'end' : 'middle' });
      label.textContent = time(xs[i]);
      root.appendChild(label);
    }

    for (const s of spec.series) {
      let d = '';
      let pen = false;
      s.values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      });
      if (d) root.appendChild(svg('path', { class: 'series', d, stroke: s.color }));
      // A lone point between gaps would draw nothing as a line.
      s.values.forEach((v, i) => {
        const prev = i > 0 ? s.values[i - 1] : null;
        const next = i < n - 1 ? s.values[i + 1] : null;
        if (v != null && prev == null && next == null) {
          root.appendChild(svg('circle', { cx: x(i), cy: y(v), r: 2.5, fill: s.color }));
        }
      });
    }

    const hover = svg('line', { class: 'hover-line', y1: pad.top, y2: pad.top + plotH, x1: -10, x2: -10 });
    root.appendChild(hover);
    const overlay = svg('rect', { x: pad.left, y: pad.top, width: plotW, height: plotH, fill: 'transparent' });
    root.appendChild(overlay);
    overlay.addEventListener('mousemove', ev => {
      if (!n) return;
      const box = root.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * width;
      const i = Math.max(0, Math.min(n - 1, Math.round(((px - pad.left) / plotW) * (n - 1))));
      hover.setAttribute('x1', x(i));
      hover.setAttribute('x2', x(i));
      const lines = [time(xs[i])];
      for (const s of spec.series) lines.push(`${s.name}: ${s.values[i] == null ? '–' : format(s.values[i])}`);
      const t = tooltip();
      t.textContent = lines.join('\n');
      t.hidden = false;
      t.style.left = `${ev.clientX + 12}px`;
      t.style.top = `${ev.clientY + 12}px`;
    });
    overlay.addEventListener('mouseleave', () => {
      hover.setAttribute('x1', -10);
      hover.setAttribute('x2', -10);
      tooltip().hidden = true;
    });

    container.replaceChildren(root);
    if (spec.series.length > 1) {
      const legend = document.createElement('div');
      legend.className = 'chart-legend';
      for (const s of spec.series) {
        const item = document.createElement('span');
        const key = document.createElement('span');
        key.className = 'key';
        key.style.background = s.color;
        item.append(key, document.createTextNode(s.name));
        legend.appendChild(item);
      }
      container.appendChild(legend);
    }
  }

  window.Chart = { line, niceStep };
})();
