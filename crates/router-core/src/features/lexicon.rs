//! Cue words: small multilingual word lists that name what a prompt asks for ("translate",
//! "翻译", "übersetze" are one cue). The domain model sees each cue as a feature of its own,
//! which lets a few hundred training examples generalise across languages, and complexity
//! counts the constraint, step and analysis cues.
//!
//! Latin-script and Cyrillic cues are matched as whole words; CJK cues as two- or
//! three-character sequences inside a run of CJK text.

use std::sync::OnceLock;

use super::text::{Script, WordTable, cjk_hash, word_hash};

/// What a cue word says about a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cue {
    Translate,
    LanguageName,
    Code,
    Math,
    Reasoning,
    Creative,
    Rewrite,
    Brainstorm,
    Roleplay,
    Summarize,
    Extract,
    Classify,
    Format,
    Question,
    Explain,
    Greeting,
    Feeling,
    Constraint,
    Steps,
    Analysis,
}

pub(crate) const CUE_COUNT: usize = 20;

const CUES: [(Cue, &str); CUE_COUNT] = [
    (
        Cue::Translate,
        "translate translation translated translating translator traduire traduis traduisez \
         traduction übersetze übersetzen übersetzung traducir traduce traduzca traducción \
         tradurre traduci traduca traduzione traduzir traduza traduz tradução vertaal vertalen \
         vertaling перевести переведи перевод переводи 翻译 翻譯 译成 译为 英译 中译 翻訳 번역",
    ),
    (
        Cue::LanguageName,
        "english chinese mandarin cantonese japanese korean french german spanish italian \
         portuguese russian dutch arabic hindi vietnamese thai anglais chinois japonais coréen \
         allemand espagnol italien portugais russe englisch chinesisch japanisch deutsch \
         französisch spanisch italienisch inglés chino japonés alemán francés español italiano \
         inglese cinese giapponese tedesco francese spagnolo inglês chinês japonês alemão \
         francês espanhol engels chinees duits frans spaans английский китайский русский \
         английского 英文 中文 英语 汉语 日语 日文 韩语 韩文 法语 德语 俄语 西班牙 葡萄牙 意大利 \
         文言文 白话 粤语 英語 中国語 日本語 韓国語 영어 한국어 일본어 중국어",
    ),
    (
        Cue::Code,
        "code coding coder function functions class method methods python javascript \
         typescript java rust golang kotlin swift php ruby perl scala haskell sql regex api \
         apis bug bugs debug debugging compile compiler runtime script scripts program \
         programming programmer algorithm implement implementation refactor unittest pytest \
         html css react vue angular django flask docker kubernetes git github bash shell linux \
         terminal database endpoint array arrays variable variables loop recursion recursive \
         library npm pip exception stacktrace segfault null async thread threads json yaml \
         backend frontend server deploy repository repo query queries snippet syntax cpp \
         nodejs numpy pandas pytorch tensorflow leetcode struct enum pointer lambda iterator \
         hashmap dict integer boolean fonction programme código codice funzione função \
         programa funktion programmierung programm klasse код функция программа 代码 函数 编程 \
         程序 算法 调试 报错 变量 数组 接口 数据库 脚本 编译 递归 指针 循环 前端 后端 部署 服务器 \
         正则 コード 関数 プログ 実装 バグ 코드 함수 프로그 버그 구현",
    ),
    (
        Cue::Math,
        "solve solving equation equations integral integrate derivative differentiate \
         calculate calculation compute probability prove proof theorem lemma matrix matrices \
         polynomial prime primes factorial geometry triangle angle area radius circle algebra \
         calculus limit series sequence sum mean median variance deviation statistics \
         percentage percent fraction fractions divisible remainder modulo logarithm sqrt sin \
         cos tan vector eigenvalue determinant inequality quadratic linear exponential \
         arithmetic math maths mathematics formula résoudre équation calculer calcule \
         gleichung berechne berechnen ecuación calcula calcular resolver ecuazione calcola \
         risolvi equação resolva уравнение вычисли реши 计算 方程 求解 积分 导数 概率 证明 定理 \
         矩阵 三角 面积 半径 数列 求和 几何 代数 微积分 平方 等于 多少 数学 分数 质数 素数 函数 极限 \
         方差 期望 周长 体积 公式 方程式 計算 確率 証明 방정식 계산 확률 수학 증명",
    ),
    (
        Cue::Reasoning,
        "puzzle puzzles riddle riddles logic logical deduce deduction infer inference paradox \
         hypothetical syllogism premise premises fallacy contradiction counterfactual liar \
         liars knights knaves truthful teaser énigme logique rätsel logik acertijo lógica \
         indovinello logica enigma 推理 逻辑 谜题 谜语 悖论 真话 假话 推断 论证 前提 矛盾 说谎 論理 \
         추론 논리 수수께",
    ),
    (
        Cue::Creative,
        "write story stories poem poems poetry haiku sonnet limerick verse rhyme lyrics song \
         songs essay novel fiction chapter character characters plot tale fairy narrative blog \
         article letter speech toast slogan tagline caption tweet screenplay dialogue monologue \
         ode ballad écris poème histoire conte chanson rédige gedicht geschichte schreibe \
         märchen poema cuento historia canción escribe poesia storia racconto scrivi história \
         conto escreva стихотворение стих рассказ напиши сочинение 故事 诗歌 诗词 一首 作文 文章 \
         小说 歌词 散文 剧本 演讲 文案 广告 标语 祝福 对联 童话 寓言 书信 情书 日记 绝句 律诗 写一 \
         物語 小説 俳句 이야기 소설 에세이",
    ),
    (
        Cue::Rewrite,
        "rewrite rephrase paraphrase polish proofread edit reword shorten simplify formal \
         informal tone grammar concise improve revise restructure reformule reformuler \
         umschreiben umformulieren reescribe reformula riscrivi riformula reescreva \
         перефразируй перепиши 改写 润色 重写 修改 改成 改为 语气 语法 书面 口语 正式 精简 简化 \
         缩写 扩写 重新 書き直 言い換 다듬 수정",
    ),
    (
        Cue::Brainstorm,
        "ideas idea brainstorm brainstorming suggest suggestions tips names ways options \
         alternatives recommend recommendations idées ideen vorschläge sugerencias idee \
         suggerimenti ideias sugestões идеи 点子 想法 创意 建议 头脑 风暴 起名 名字 取名 方案 推荐 \
         几个 アイデ 提案 아이디",
    ),
    (
        Cue::Roleplay,
        "pretend roleplay role act acting persona imagine playing character interviewer \
         simulate joue incarne spiele rolle actúa interpreta finge finja представь роль 扮演 \
         角色 充当 模拟 担任 假装 演じ 역할",
    ),
    (
        Cue::Summarize,
        "summarize summarise summary summarizing tldr condense recap gist outline abstract \
         highlights résume résumé résumer zusammenfassung zusammenfassen fasse resume resumen \
         resumir riassumi riassunto resuma resumo samenvatting резюме кратко 总结 概括 摘要 归纳 \
         概述 要点 提炼 要約 まとめ 요약",
    ),
    (
        Cue::Extract,
        "extract extraction identify entities entity keywords keyword dates emails addresses \
         mentioned mentions parse extrais extraire extrahiere extrae extraer estrai estrarre \
         extraia извлеки 提取 抽取 找出 列出 关键词 实体 信息 抽出 추출",
    ),
    (
        Cue::Classify,
        "classify classification categorize categorise category categories label labels \
         sentiment positive negative neutral spam classe classifie klassifiziere \
         kategorisiere clasifica categoriza classifica classifique классифицируй 分类 归类 类别 \
         情感 正面 负面 中性 属于 分類 분류",
    ),
    (
        Cue::Format,
        "format formatting table markdown csv yaml xml bullet bullets sort alphabetical \
         alphabetically convert column columns rows template capitalize uppercase lowercase \
         tableau tabelle tabla tabella tabela таблица 格式 表格 排序 转换 列表 整理 排版 大写 小写 \
         형식",
    ),
    (
        Cue::Question,
        "what why how who when where which whom whose quoi pourquoi comment warum wieso wie \
         was qué cómo perché cosa почему как что 什么 为什么 如何 怎么 怎样 是谁 哪些 哪个 哪里 \
         何时 なぜ 무엇 어떻게",
    ),
    (
        Cue::Explain,
        "explain explanation describe define definition meaning difference compare history \
         overview introduction concept explique expliquer erkläre erklären explica explicar \
         spiega spiegare объясни расскажи 解释 介绍 区别 原因 意思 历史 定义 含义 说明 讲解 作用 \
         原理 説明 意味 설명 의미",
    ),
    (
        Cue::Greeting,
        "hello hi hey hiya howdy greetings morning evening thanks thank bye goodbye cheers lol \
         haha hehe bonjour salut merci hallo danke hola gracias ciao grazie olá obrigado \
         привет спасибо здравствуйте 你好 您好 谢谢 早上好 晚安 哈哈 再见 拜拜 早安 안녕 감사",
    ),
    (
        Cue::Feeling,
        "feel feeling feelings sad happy tired bored lonely stressed anxious upset excited \
         chat talk weekend mood 心情 难过 开心 无聊 聊天 孤独 压力 焦虑 失眠 伤心 寂し 気分 기분 심심",
    ),
    (
        Cue::Constraint,
        "must exactly least maximum minimum only without avoid ensure including don't never \
         limit within words characters sentences paragraphs requirements requirement \
         constraints strictly muss doit debe deve 必须 要求 至少 不超过 不要 不能 务必 限制 以内 确保 \
         避免 只能 不得 字数 不少于 严格 必ず 반드시",
    ),
    (
        Cue::Steps,
        "step steps first then finally afterwards next second third lastly additionally plan \
         stages phase étape schritt paso passo шаг 首先 然后 其次 最后 步骤 分步 接着 同时 并且 第一 \
         第二 第三 再次 手順 단계",
    ),
    (
        Cue::Analysis,
        "analyze analyse analysis compare comparison evaluate evaluation justify derive \
         tradeoff tradeoffs pros cons design architecture optimize optimise critique assess \
         implications strategy comprehensive detailed thorough analysiere analiza analizza \
         analise 分析 比较 评估 论证 推导 权衡 优缺点 设计 优化 深入 全面 详细 评价 利弊 분석",
    ),
];

/// A set of cues, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cues(u32);

impl Cues {
    #[cfg(test)]
    fn contains(self, cue: Cue) -> bool {
        self.0 & (1 << cue as u8) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The cues in the set, in declaration order.
    pub(crate) fn iter(self) -> impl Iterator<Item = u8> {
        (0..CUE_COUNT as u8).filter(move |&i| self.0 & (1 << i) != 0)
    }
}

/// How often each cue occurred in a text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CueCounts([u16; CUE_COUNT]);

impl CueCounts {
    pub(crate) fn add(&mut self, cues: Cues) {
        for i in cues.iter() {
            let count = &mut self.0[usize::from(i)];
            *count = count.saturating_add(1);
        }
    }

    pub(crate) fn get(&self, cue: Cue) -> u16 {
        self.0[cue as usize]
    }
}

/// The key a cue is stored under: [`cjk_hash`] for CJK sequences, [`word_hash`] for words.
fn key(cue: &str) -> u64 {
    let chars: Vec<char> = cue.chars().collect();
    if chars.iter().all(|&c| Script::of(c).is_cjk()) { cjk_hash(&chars) } else { word_hash(cue) }
}

/// The cues of a word (by [`word_hash`]) or a CJK sequence (by [`cjk_hash`]).
pub(crate) fn lookup(hash: u64) -> Cues {
    table().get(hash).unwrap_or_default()
}

fn table() -> &'static WordTable<Cues> {
    static TABLE: OnceLock<WordTable<Cues>> = OnceLock::new();
    TABLE.get_or_init(|| {
        WordTable::build(
            CUES.iter().flat_map(|&(cue, words)| {
                words.split_whitespace().map(move |w| (key(w), Cues(1 << cue as u8)))
            }),
            |a, b| Cues(a.0 | b.0),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cue_lists_are_in_declaration_order() {
        for (i, (cue, _)) in CUES.iter().enumerate() {
            assert_eq!(*cue as usize, i);
        }
    }

    #[test]
    fn cues_match_across_languages_and_case() {
        for word in ["Translate", "übersetze", "traduis"] {
            assert!(lookup(word_hash(word)).contains(Cue::Translate), "{word}");
        }
        for cjk in [['翻', '译'], ['번', '역']] {
            assert!(lookup(cjk_hash(&cjk)).contains(Cue::Translate), "{cjk:?}");
        }
        let both = lookup(cjk_hash(&['函', '数']));
        assert!(both.contains(Cue::Code) && both.contains(Cue::Math));
        assert!(lookup(word_hash("the")).is_empty());
    }

    #[test]
    fn cjk_cues_fit_the_two_and_three_character_windows() {
        for (_, words) in CUES {
            for w in words.split_whitespace() {
                let cjk = w.chars().all(|c| Script::of(c).is_cjk());
                if cjk {
                    let n = w.chars().count();
                    assert!((2..=3).contains(&n), "{w} has {n} characters");
                }
            }
        }
    }
}
