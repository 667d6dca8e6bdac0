// The dashboard's words in English and Chinese. The choice is kept in a cookie (so the
// server renders the login page in it too) and switches without a reload.
(function () {
  'use strict';
  const en = {
    'nav.overview': 'Overview', 'nav.models': 'Models', 'nav.quality': 'Routing quality', 'nav.decisions': 'Decisions', 'nav.feedback': 'Feedback',
    'live': 'live', 'logout': 'Log out', 'loading': 'Loading…', 'yes': 'yes', 'no': 'no',
    'error.load': 'Could not load the data', 'error.session': 'The session has ended',
    'window.15m': 'last 15 minutes', 'window.1h': 'last hour', 'window.6h': 'last 6 hours', 'window.24h': 'last 24 hours', 'window.7d': 'last 7 days', 'window.30d': 'last 30 days',
    'kpi.requests': 'Requests', 'kpi.rpm': 'Requests / min', 'kpi.p50': 'Latency p50', 'kpi.p95': 'Latency p95', 'kpi.error_rate': 'Error rate', 'kpi.errors': 'errors',
    'kpi.tokens': 'Tokens', 'kpi.in': 'in', 'kpi.out': 'out', 'kpi.cost': 'Cost', 'kpi.saved': 'Saved vs. strongest model',
    'kpi.saved_note': '{pct} of {cost} at {model}', 'kpi.no_strongest': 'no enabled model to compare with',
    'chart.rpm': 'Requests per minute', 'chart.latency': 'Latency (successful requests)', 'chart.error_rate': 'Error rate', 'chart.tokens': 'Tokens', 'chart.cost': 'Cost (USD)',
    'sources.title': 'How decisions were made', 'sources.since': 'Requests received since {time}.',
    'source.judge': 'judge', 'source.policy': 'policy', 'source.fallback': 'fallback', 'source.explicit': 'explicit',
    'judge.title': 'Judge (local LLM)', 'judge.off': 'Judge off: the learned policy makes every decision.', 'judge.mode': 'Mode · model · API',
    'judge.reachable': 'Reachable', 'judge.model_present': 'Model present', 'judge.unknown': 'not checked yet', 'judge.latency': 'Mean latency',
    'judge.last': 'last', 'judge.budget': 'budget', 'judge.cache': 'Cache hit rate', 'judge.entries': 'entries', 'judge.calls': 'Consultations',
    'judge.calls_note': '{consulted} asked · {failures} failed ({timeouts} timeouts) · {overrides} overrides', 'judge.in_flight': 'Calls out',
    'judge.in_flight_note': '{in_flight} of {allowed} at once (at most {max}) · {busy} left to the policy while all were out', 'judge.paused': 'Paused after failures', 'judge.last_error': 'Last error',
    'overview.models': '{available} of {enabled} enabled models available ({total} configured)',
    'availability.healthy': 'healthy', 'availability.recovering': 'recovering', 'availability.unavailable': 'unavailable',
    'circuit.closed': 'circuit closed', 'circuit.open': 'circuit open', 'circuit.half_open': 'circuit half-open',
    'col.model': 'Model', 'models.model': 'Model / deployment', 'models.health': 'Health', 'models.weight': 'Weight', 'models.latency': 'Recent latency', 'models.calls': 'Calls / failures',
    'models.error_rate': 'Error rate', 'models.last_hour': 'Last hour', 'models.price_note': '${input} / ${output} per Mtok', 'models.hour_note': '{n} requests · {ok} ok',
    'models.hour_none': 'no requests', 'models.disabled': 'disabled',
    'models.note': 'Weights split a model’s traffic between its deployments and nudge the router towards heavier models. Changes apply to the next request and are recorded below.', 'models.enable': 'Enable', 'models.disable': 'Disable',
    'models.save': 'Save', 'models.reset': 'Reset circuit', 'models.healthy': 'healthy', 'models.unhealthy': 'unhealthy', 'models.opened': 'opened {n}×', 'models.in_flight': '· {n} in flight', 'models.in_flight_of': '· {n} of {max} in flight', 'models.full': 'at its limit', 'models.limit': 'Calls in flight at most', 'models.no_limit': 'no limit', 'models.limit_toast': '{id} takes at most {n} calls at once', 'models.limit_lifted_toast': '{id} has no in-flight limit now',
    'models.weight_toast': 'Weight of {id} set to {weight}', 'models.disabled_toast': '{name} disabled', 'models.enabled_toast': '{name} enabled', 'models.reset_toast': 'Circuit of {id} reset',
    'audit.title': 'Changes (audit log)', 'audit.time': 'When', 'audit.actor': 'Who', 'audit.action': 'What', 'audit.target': 'Target', 'audit.detail': 'Detail',
    'audit.empty': 'No changes yet.', 'audit.set_weight': 'set weight', 'audit.set_max_in_flight': 'set in-flight limit', 'audit.enable_model': 'enable model', 'audit.disable_model': 'disable model',
    'audit.enable_deployment': 'enable deployment', 'audit.disable_deployment': 'disable deployment', 'audit.reset_circuit': 'reset circuit',
    'quality.by_domain': 'model × domain', 'quality.by_language': 'model × language', 'quality.measured': 'Measured',
    'quality.empty': 'No requests in this window yet.', 'quality.learned': 'What the policy has learned',
    'quality.learned_note': 'Expected answer quality (0–1) per cell, from outcomes and feedback; w is the evidence behind it.', 'quality.learned_empty': 'Nothing learned yet.',
    'metric.requests': 'requests', 'metric.success_rate': 'success rate', 'metric.mean_rating': 'mean rating (1–5)', 'metric.quality': 'learned quality',
    'legend.low': 'low', 'legend.high': 'high',
    'filter.all_models': 'all models', 'filter.all_domains': 'all domains', 'filter.all_languages': 'all languages', 'filter.all_sources': 'all sources', 'filter.all_outcomes': 'all outcomes',
    'dec.time': 'Received', 'dec.model': 'Model', 'dec.source': 'Source', 'dec.domain': 'Domain', 'dec.language': 'Language', 'dec.complexity': 'Complexity',
    'dec.outcome': 'Outcome', 'dec.latency': 'Latency', 'dec.cost': 'Cost', 'dec.feedback': 'Feedback', 'dec.empty': 'No decisions match.', 'dec.more': 'Load more',
    'outcome.ok': 'ok', 'outcome.error': 'error', 'outcome.cancelled': 'cancelled', 'outcome.pending': 'pending',
    'band.low': 'low', 'band.medium': 'medium', 'band.high': 'high',
    'detail.title': 'Decision', 'detail.id': 'Decision id', 'detail.requested': 'Requested', 'detail.reason': 'Reason', 'detail.source': 'Decided by',
    'detail.prompt_hash': 'Prompt (SHA-256)', 'detail.prompt_full': 'Prompt', 'detail.outcome': 'Outcome', 'detail.error': 'Error', 'detail.attempts': 'Attempts',
    'detail.feedback': 'Feedback', 'detail.no_feedback': 'none yet', 'detail.ranking': 'Ranking', 'detail.features': 'Features',
    'rank.n': '#', 'rank.model': 'Model', 'rank.utility': 'Utility', 'rank.quality': 'Quality', 'rank.cost': 'Expected cost', 'rank.latency': 'Expected latency', 'rank.evidence': 'Evidence',
    'fb.time': 'When', 'fb.rating': 'Rating', 'fb.score': 'Score', 'fb.model': 'Model', 'fb.comment': 'Comment', 'fb.decision': 'Decision', 'fb.empty': 'No feedback yet.',
    'key.code': 'code', 'key.math': 'math', 'key.reasoning': 'reasoning', 'key.writing': 'writing', 'key.translation': 'translation',
    'key.text_processing': 'text processing', 'key.knowledge': 'knowledge', 'key.chat': 'chat', 'key.none': 'none',
    'key.en': 'English', 'key.zh': 'Chinese', 'key.ja': 'Japanese', 'key.ko': 'Korean', 'key.fr': 'French', 'key.de': 'German', 'key.es': 'Spanish',
    'key.it': 'Italian', 'key.pt': 'Portuguese', 'key.nl': 'Dutch', 'key.ru': 'Russian', 'key.other': 'other', 'key.und': 'undetermined',
  };
  const zh = {
    'nav.overview': '概览', 'nav.models': '模型', 'nav.quality': '路由质量', 'nav.decisions': '决策', 'nav.feedback': '反馈',
    'live': '实时', 'logout': '退出登录', 'loading': '加载中…', 'yes': '是', 'no': '否',
    'error.load': '数据加载失败', 'error.session': '会话已结束',
    'window.15m': '最近 15 分钟', 'window.1h': '最近 1 小时', 'window.6h': '最近 6 小时', 'window.24h': '最近 24 小时', 'window.7d': '最近 7 天', 'window.30d': '最近 30 天',
    'kpi.requests': '请求数', 'kpi.rpm': '每分钟请求', 'kpi.p50': '延迟 p50', 'kpi.p95': '延迟 p95', 'kpi.error_rate': '错误率', 'kpi.errors': '个错误',
    'kpi.tokens': '令牌数', 'kpi.in': '输入', 'kpi.out': '输出', 'kpi.cost': '成本', 'kpi.saved': '相比最强模型节省',
    'kpi.saved_note': '{model} 需 {cost}，节省 {pct}', 'kpi.no_strongest': '没有可比较的已启用模型',
    'chart.rpm': '每分钟请求数', 'chart.latency': '延迟（成功请求）', 'chart.error_rate': '错误率', 'chart.tokens': '令牌数', 'chart.cost': '成本（美元）',
    'sources.title': '决策来源', 'sources.since': '自 {time} 起收到的请求。',
    'source.judge': '裁判', 'source.policy': '策略', 'source.fallback': '回退', 'source.explicit': '指定',
    'judge.title': '裁判（本地大模型）', 'judge.off': '裁判未启用：所有决策由学习到的策略做出。', 'judge.mode': '模式 · 模型 · 接口',
    'judge.reachable': '可连接', 'judge.model_present': '模型已就绪', 'judge.unknown': '尚未检查', 'judge.latency': '平均延迟',
    'judge.last': '最近', 'judge.budget': '时限', 'judge.cache': '缓存命中率', 'judge.entries': '条', 'judge.calls': '咨询次数',
    'judge.calls_note': '咨询 {consulted} 次 · 失败 {failures} 次（超时 {timeouts}）· 改判 {overrides} 次', 'judge.in_flight': '进行中的调用',
    'judge.in_flight_note': '{in_flight} / 当前同时 {allowed} 个（上限 {max}）· 满载时由策略决定 {busy} 次', 'judge.paused': '因失败而暂停', 'judge.last_error': '最近错误',
    'overview.models': '{enabled} 个已启用模型中 {available} 个可用（共配置 {total} 个）',
    'availability.healthy': '健康', 'availability.recovering': '恢复中', 'availability.unavailable': '不可用',
    'circuit.closed': '熔断器闭合', 'circuit.open': '熔断器断开', 'circuit.half_open': '熔断器半开',
    'col.model': '模型', 'models.model': '模型 / 部署', 'models.health': '健康状况', 'models.weight': '权重', 'models.latency': '近期延迟', 'models.calls': '调用 / 失败',
    'models.error_rate': '错误率', 'models.last_hour': '最近 1 小时', 'models.price_note': '每百万令牌 ${input} / ${output}', 'models.hour_note': '{n} 个请求 · 成功 {ok}',
    'models.hour_none': '无请求', 'models.disabled': '已停用',
    'models.note': '权重决定流量在模型各部署之间的分配，并使路由器偏向权重更高的模型。更改对下一个请求立即生效，并记录在下方。', 'models.enable': '启用', 'models.disable': '停用',
    'models.save': '保存', 'models.reset': '重置熔断器', 'models.healthy': '健康', 'models.unhealthy': '不健康', 'models.opened': '断开 {n} 次', 'models.in_flight': '· 进行中 {n}', 'models.in_flight_of': '· 进行中 {n} / {max}', 'models.full': '已满', 'models.limit': '最多同时调用数', 'models.no_limit': '不限', 'models.limit_toast': '{id} 最多同时处理 {n} 个调用', 'models.limit_lifted_toast': '{id} 已取消并发上限',
    'models.weight_toast': '{id} 的权重已设为 {weight}', 'models.disabled_toast': '已停用 {name}', 'models.enabled_toast': '已启用 {name}', 'models.reset_toast': '已重置 {id} 的熔断器',
    'audit.title': '变更记录（审计日志）', 'audit.time': '时间', 'audit.actor': '操作人', 'audit.action': '操作', 'audit.target': '对象', 'audit.detail': '详情',
    'audit.empty': '暂无变更。', 'audit.set_weight': '设置权重', 'audit.set_max_in_flight': '设置并发上限', 'audit.enable_model': '启用模型', 'audit.disable_model': '停用模型',
    'audit.enable_deployment': '启用部署', 'audit.disable_deployment': '停用部署', 'audit.reset_circuit': '重置熔断器',
    'quality.by_domain': '模型 × 领域', 'quality.by_language': '模型 × 语言', 'quality.measured': '实测',
    'quality.empty': '该时间段内还没有请求。', 'quality.learned': '策略学到了什么',
    'quality.learned_note': '每格为预期回答质量（0–1），来自结果与反馈；w 为其证据量。', 'quality.learned_empty': '尚未学到任何内容。',
    'metric.requests': '请求数', 'metric.success_rate': '成功率', 'metric.mean_rating': '平均评分（1–5）', 'metric.quality': '学到的质量',
    'legend.low': '低', 'legend.high': '高',
    'filter.all_models': '全部模型', 'filter.all_domains': '全部领域', 'filter.all_languages': '全部语言', 'filter.all_sources': '全部来源', 'filter.all_outcomes': '全部结果',
    'dec.time': '接收时间', 'dec.model': '模型', 'dec.source': '来源', 'dec.domain': '领域', 'dec.language': '语言', 'dec.complexity': '复杂度',
    'dec.outcome': '结果', 'dec.latency': '延迟', 'dec.cost': '成本', 'dec.feedback': '反馈', 'dec.empty': '没有符合条件的决策。', 'dec.more': '加载更多',
    'outcome.ok': '成功', 'outcome.error': '错误', 'outcome.cancelled': '已取消', 'outcome.pending': '进行中',
    'band.low': '低', 'band.medium': '中', 'band.high': '高',
    'detail.title': '决策详情', 'detail.id': '决策 ID', 'detail.requested': '请求', 'detail.reason': '理由', 'detail.source': '决策者',
    'detail.prompt_hash': '提示词（SHA-256）', 'detail.prompt_full': '提示词', 'detail.outcome': '结果', 'detail.error': '错误', 'detail.attempts': '尝试',
    'detail.feedback': '反馈', 'detail.no_feedback': '暂无', 'detail.ranking': '排名', 'detail.features': '特征',
    'rank.n': '#', 'rank.model': '模型', 'rank.utility': '效用', 'rank.quality': '质量', 'rank.cost': '预期成本', 'rank.latency': '预期延迟', 'rank.evidence': '证据',
    'fb.time': '时间', 'fb.rating': '评分', 'fb.score': '分数', 'fb.model': '模型', 'fb.comment': '评论', 'fb.decision': '决策', 'fb.empty': '暂无反馈。',
    'key.code': '代码', 'key.math': '数学', 'key.reasoning': '推理', 'key.writing': '写作', 'key.translation': '翻译',
    'key.text_processing': '文本处理', 'key.knowledge': '知识', 'key.chat': '闲聊', 'key.none': '无',
    'key.en': '英语', 'key.zh': '中文', 'key.ja': '日语', 'key.ko': '韩语', 'key.fr': '法语', 'key.de': '德语', 'key.es': '西班牙语',
    'key.it': '意大利语', 'key.pt': '葡萄牙语', 'key.nl': '荷兰语', 'key.ru': '俄语', 'key.other': '其他', 'key.und': '未确定',
  };
  const dictionaries = { en, zh };

  function cookieLang() {
    const m = document.cookie.match(/(?:^|;\s*)lr_lang=(en|zh)/);
    return m ? m[1] : null;
  }
  let current = cookieLang() || (document.documentElement.lang === 'zh' ? 'zh' : 'en');

  window.I18N = {
    lang: () => current,
    locale: () => (current === 'zh' ? 'zh-CN' : 'en-GB'),
    set(lang) {
      if (!dictionaries[lang]) return;
      current = lang;
      document.cookie = `lr_lang=${lang}; Path=/dashboard; Max-Age=31536000; SameSite=Strict`;
    },
    // The text for a key, with {name} placeholders filled; null when the key is unknown, so
    // callers can fall back to the raw value (`t('key.' + x) || x`).
    t(key, vars) {
      let text = dictionaries[current][key];
      if (text == null) text = en[key];
      if (text == null) return null;
      if (vars) for (const [k, v] of Object.entries(vars)) text = text.split(`{${k}}`).join(String(v));
      return text;
    },
    keys: lang => Object.keys(dictionaries[lang] || {}),
  };
})();
