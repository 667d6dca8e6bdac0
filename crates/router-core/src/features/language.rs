//! Language identification tuned for what a router sees: short prompts, technical terms,
//! code, and Chinese mixed with English.
//!
//! Two kinds of evidence, cheapest first:
//!
//! 1. **Script.** Hangul means Korean, kana means Japanese, Han without kana means Chinese,
//!    Cyrillic means Russian unless letters only Ukrainian, Belarusian or Serbian use appear.
//!    Each script's share of the text is counted in rough "word units" so that eight Chinese
//!    characters and two English product names compare fairly.
//! 2. **Function words, diacritics and endings** for the Latin-script languages. Statistical
//!    character models need far more text than "Write a haiku about autumn" to separate
//!    English from French; the words such a prompt is built from ("write", "a", "about") are
//!    the strongest evidence there is, and a handful of letters (ß, ñ, ã, œ) and endings
//!    (-ung, -ción, -ção, -zione, -lijk) settle most of the rest.
//!
//! The two largest shares become `primary` and, when the second is a real part of the text,
//! `secondary`. Words on lines of source code count for little (code is not English prose),
//! and the opening clause counts double, because that is where the user speaks before quoting
//! or pasting material in another language.

use std::sync::OnceLock;

use super::text::{
    Script, Token, Tokens, WordTable, fold, head, is_code_line, is_fence, word_hash,
};
use super::{Language, LanguageGuess};

/// How much of a text is read. The language of a prompt is settled long before this, and a
/// bound keeps detection constant-time for long prompts.
const SCAN_BYTES: usize = 768;

/// How many "word units" one character of a script without spaces is worth.
/// A Han character carries somewhat less than an English word, but people writing Chinese
/// embed English terms far more often than the reverse, so the two are weighed as equals.
const HAN_UNIT: f32 = 1.0;
const KANA_UNIT: f32 = 0.8;
const HANGUL_UNIT: f32 = 0.6;
/// A word on a line of source code (identifiers and keywords are not prose), or a one- or
/// two-letter word no list knows (a variable in a formula, an option letter).
const SYMBOL_WORD_UNIT: f32 = 0.25;
/// The opening clause (up to the first colon, sentence end or line break) is the user's own
/// voice: when it is clearly in one script, that script's language is primary even if quoted
/// or pasted material in another outweighs it.
const LEAD_BYTES: usize = 120;
/// Words inside quotation marks are what the user talks about, not how they talk.
const QUOTED_FACTOR: f32 = 0.5;
/// A lead this small ("hi:", a name) decides nothing.
const LEAD_MIN_UNITS: f32 = 1.5;
/// The share of the lead one script must hold to decide.
const LEAD_DOMINANCE: f32 = 0.75;

/// A secondary language must hold this share of the text...
const SECONDARY_SHARE: f32 = 0.15;
/// ...and at least this many word units.
const SECONDARY_UNITS: f32 = 1.5;
/// Words of source code that make English the secondary language of another language's text.
const CODE_WORDS_FOR_SECONDARY: u32 = 4;

/// The Latin-script languages told apart by word evidence. `Other` collects evidence for
/// Latin-script languages the router does not route on (Polish, Turkish, Vietnamese, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latin {
    En,
    Fr,
    De,
    Es,
    It,
    Pt,
    Nl,
    Other,
}

const LATIN: [Latin; 8] =
    [Latin::En, Latin::Fr, Latin::De, Latin::Es, Latin::It, Latin::Pt, Latin::Nl, Latin::Other];

impl Latin {
    fn language(self) -> Language {
        match self {
            Latin::En => Language::En,
            Latin::Fr => Language::Fr,
            Latin::De => Language::De,
            Latin::Es => Language::Es,
            Latin::It => Language::It,
            Latin::Pt => Language::Pt,
            Latin::Nl => Language::Nl,
            Latin::Other => Language::Other,
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

// Function words and the verbs prompts are built from, per language. A word listed under
// several languages is evidence for each, split between them.
const EN: &str = "the a an and or but of to in on at for with about from by as into onto is \
    are was were be been being am do does did done doing have has had having will would can \
    could should shall may might must i you he she it we they me him her us them my your his \
    its our their this that these those what which who whom whose why how when where there \
    here not no yes if then than so because some any all each every more most very just also \
    only please hello hi hey thanks thank write explain give make create tell show list \
    describe help find get what's it's don't doesn't can't i'm i've you're let's isn't aren't \
    won't like want need know think good best way between difference after before over under \
    out up down without one two new use using example something anything everything someone \
    much many such other another same both few too again still even well really now today \
    through during while generate summarize summarise translate rewrite convert compare \
    suggest draft fix implement come";

const FR: &str = "le la les l' un une des du de d' et ou où est sont être été avoir a ai as \
    avons avez ont je j' tu il elle nous vous ils elles on ce c' cette ces cet qui que qu' quoi \
    quel quelle quels quelles dans sur sous pour par avec sans pas ne n' plus mais comme \
    comment pourquoi quand très aussi bien tout tous toute toutes au aux mon ma mes ton ta tes \
    son sa ses notre nos votre vos leur leurs moi toi lui se s' m' t' c'est bonjour salut merci \
    écris écrivez écrire explique expliquez expliquer donne donnez fais faites faire peux \
    pouvez peut veux voudrais plaît traduis traduisez résume résumez entre chez ça y en si \
    donc car fait ici voici quelque chose aujourd'hui suis es êtes était avait cela celui \
    celle ceux même autre autres encore déjà toujours jamais rien peu beaucoup trop avant \
    après pendant depuis vers contre selon aide crée créez génère liste rédige rédigez \
    corrige dis dites montre combien bon bonne meilleur à";

const DE: &str = "der die das den dem des ein eine einen einem einer eines und oder aber ist \
    sind war waren sein seine hat haben habe hast hatte wird werden wurde kann können könnte \
    soll sollte sollen muss müssen ich du er sie es wir ihr mich mir dich dir uns euch ihnen \
    ihm ihn mein meine dein deine ihre unser nicht kein keine keinen auch noch schon nur sehr \
    mit von zu zum zur bei nach aus für über unter auf im am vom ins an wie was warum wer wo \
    wann welche welcher welches wieso dass wenn weil ob dann doch bitte hallo danke schreibe \
    schreib erkläre erklär erklären gib mach mache fasse zusammen übersetze übersetzen hilf \
    zeige gibt heute gut hier man sich diese dieser dieses diesen jetzt mehr viel viele etwas \
    alles immer gegen ohne durch zwischen bis seit wäre würde möchte einfach also so da denn \
    ja nein erstelle beschreibe um";

const ES: &str = "el la los las un una unos unas y o pero de del al en con por para sin sobre \
    entre es son está están estoy estás ser estar fue era ha han hay he has hemos yo tú él ella \
    nosotros vosotros ellos ellas usted ustedes me te se nos le les lo mi mis tu tus su sus \
    nuestro que qué quién cuál cuáles cómo cuándo dónde cuánto cuántos porque muy más también \
    ya no sí si este esta estos estas esto ese esa eso aquí hola gracias escribe escriba \
    escríbeme explica explique explícame dame dime haz hazme puedes puede podrías quiero \
    quisiera necesito traduce traduzca resume resuma ayuda ayúdame cual como cuando donde \
    mejor bien todo todos todas otro otra algo nada mucho muchos poco hacer tiene tengo tienes \
    genera crea describe corrige hasta desde hacia según durante";

const IT: &str = "il lo la i gli le l' un uno una un' e ed o ma di del della dei delle degli \
    dello dell' al alla ai alle allo all' da dal dalla dai dalle in nel nella nei nelle nell' \
    su sul sulla per con tra fra è sono sei siamo siete essere era ho hai ha abbiamo avete \
    hanno io tu lui lei noi voi loro mi ti ci vi si ne che chi cosa come perché quando dove \
    quale quali quanto quanti non più molto anche già questo questa questi queste quello \
    quella ciao grazie scrivi scriva spiega spieghi spiegami dammi dimmi fammi fai puoi può \
    potresti vorrei voglio traduci traduca riassumi riassuma aiutami aiuto c'è cos'è bene \
    tutto tutti tutte altro altra qualcosa niente poco fare ogni sempre ancora dopo prima \
    senza mio mia tuo tua suo sua nostro crea genera elenca descrivi correggi so";

const PT: &str = "o a os as um uma uns umas e ou mas de do da dos das em no na nos nas num \
    numa por pelo pela pelos pelas para com sem sobre entre é são está estão estou ser estar \
    foi era tem têm tenho há eu tu você ele ela nós vocês eles elas me te se lhe lhes meu \
    minha meus minhas seu sua seus suas nosso nossa que quem qual quais como quando onde \
    porque porquê quanto muito mais também já não sim este esta estes estas isto esse essa \
    isso aqui olá oi obrigado obrigada escreva escreve explique explica dê faça faz pode posso \
    podes poderia quero queria preciso traduza traduz resuma resume ajude ajuda tudo bem todos \
    todas outro outra algo nada pouco fazer ao aos à às pra crie gere liste descreva corrija \
    depois antes até da";

const NL: &str = "de het een en of maar van in op aan met voor door over naar bij uit om tot \
    is zijn was waren ben bent heb hebt heeft hebben had wordt worden werd kan kunnen kun kunt \
    moet moeten wil willen zal zou ik jij je u hij zij ze wij we jullie mij me ons mijn jouw uw \
    haar hun niet geen ook nog al wel heel erg dit dat deze die wat wie waar wanneer waarom hoe \
    welke welk als dan omdat hallo hoi dank bedankt schrijf leg geef maak vertaal vat samen \
    alsjeblieft alstublieft graag er hier daar nu veel meer iets alles zonder tussen na zo \
    goed beter beste mogelijk hoeveel";

/// Frequent words of Latin-script languages the router does not route on: Scandinavian,
/// Polish, Czech, Turkish, Indonesian/Malay, Vietnamese, Romanian, Hungarian, Tagalog.
const OTHER_LATIN: &str = "och att det är som för på med jeg og ikke til af ett har jag inte \
    vad hvad hur hvordan jest nie się że jak czy dla są być proszę napisz ve bir bu için ile \
    nasıl nedir değil çok yang di ini itu untuk dengan tidak apa bagaimana saya anda dari \
    adalah bisa tolong là của và có không tôi bạn được cho này một những các với și este în \
    nu ce cum pentru cu sunt az és hogy nem van egy ang ng mga sa jsem není proč";

/// Evidence for Latin-script languages: which, and how strongly.
type Evidence = &'static [(Latin, f32)];

/// Evidence carried by a single letter: which languages write it, and how strongly it
/// points to them.
fn letter_evidence(c: char) -> Evidence {
    use Latin::*;
    match c {
        'ß' => &[(De, 2.0)],
        'ä' => &[(De, 1.2), (Other, 0.3)],
        'ö' => &[(De, 1.0), (Other, 0.4)],
        'ü' => &[(De, 1.0), (Other, 0.3)],
        'é' => &[(Fr, 0.5), (Es, 0.3), (Pt, 0.3), (It, 0.15)],
        'è' => &[(Fr, 0.8), (It, 0.6)],
        'ê' => &[(Fr, 0.8), (Pt, 0.6)],
        'ë' => &[(Fr, 0.3), (Nl, 0.6)],
        'ï' => &[(Fr, 0.6), (Nl, 0.4)],
        'î' => &[(Fr, 0.9), (Other, 0.3)],
        'ô' => &[(Fr, 0.8), (Pt, 0.6)],
        'û' => &[(Fr, 1.0)],
        'ù' => &[(Fr, 0.6), (It, 0.6)],
        'à' => &[(Fr, 0.6), (It, 0.6), (Pt, 0.4)],
        'â' => &[(Fr, 0.8), (Pt, 0.6), (Other, 0.2)],
        'ç' => &[(Fr, 0.7), (Pt, 0.7), (Other, 0.2)],
        'œ' => &[(Fr, 2.0)],
        'ñ' => &[(Es, 2.0)],
        'á' => &[(Es, 0.8), (Pt, 0.7), (Other, 0.2)],
        'í' => &[(Es, 0.8), (Pt, 0.6), (Other, 0.2)],
        'ó' => &[(Es, 0.8), (Pt, 0.6), (Other, 0.3)],
        'ú' => &[(Es, 0.8), (Pt, 0.6), (Other, 0.2)],
        '¿' | '¡' => &[(Es, 2.0)],
        'ã' | 'õ' => &[(Pt, 2.0)],
        'ì' | 'ò' => &[(It, 1.2)],
        'ĳ' => &[(Nl, 2.0)],
        'ł' | 'ś' | 'ź' | 'ż' | 'ć' | 'ń' | 'ę' | 'ą' | 'ő' | 'ű' | 'ř' | 'ů' | 'ě' | 'č' | 'š'
        | 'ž' | 'ş' | 'ğ' | 'ı' | 'ă' | 'ș' | 'ț' | 'ð' | 'þ' | 'å' | 'ø' | 'æ' | 'đ' | 'ơ'
        | 'ư' => &[(Other, 1.5)],
        // Vietnamese tone marks (Latin Extended Additional).
        '\u{1EA0}'..='\u{1EF9}' => &[(Other, 1.5)],
        _ => &[],
    }
}

/// Word endings that point to a language; checked only for longer words the function-word
/// lists do not know.
const SUFFIXES: &[(&str, Evidence)] = {
    use Latin::*;
    &[
        ("ing", &[(En, 0.5)]),
        ("tion", &[(En, 0.3), (Fr, 0.3)]),
        ("ness", &[(En, 0.6)]),
        ("ly", &[(En, 0.3)]),
        ("ful", &[(En, 0.5)]),
        ("ous", &[(En, 0.5)]),
        ("ight", &[(En, 0.6)]),
        ("ough", &[(En, 0.7)]),
        ("eux", &[(Fr, 0.7)]),
        ("euse", &[(Fr, 0.7)]),
        ("aux", &[(Fr, 0.5)]),
        ("ique", &[(Fr, 0.4)]),
        ("ée", &[(Fr, 0.8)]),
        ("ées", &[(Fr, 0.8)]),
        ("ait", &[(Fr, 0.5)]),
        ("aient", &[(Fr, 0.8)]),
        ("ment", &[(Fr, 0.3), (En, 0.2)]),
        ("ez", &[(Fr, 0.5)]),
        ("oir", &[(Fr, 0.6)]),
        ("eur", &[(Fr, 0.5)]),
        ("ung", &[(De, 1.0)]),
        ("ungen", &[(De, 1.0)]),
        ("keit", &[(De, 1.0)]),
        ("heit", &[(De, 0.8)]),
        ("lich", &[(De, 0.9)]),
        ("isch", &[(De, 0.6), (Nl, 0.3)]),
        ("chen", &[(De, 0.7)]),
        ("schaft", &[(De, 1.0)]),
        ("ieren", &[(De, 1.0)]),
        ("en", &[(De, 0.15), (Nl, 0.15)]),
        ("ción", &[(Es, 1.0)]),
        ("ciones", &[(Es, 1.0)]),
        ("idad", &[(Es, 1.0)]),
        ("ado", &[(Es, 0.4), (Pt, 0.3)]),
        ("ada", &[(Es, 0.4), (Pt, 0.3)]),
        ("ando", &[(Es, 0.3), (Pt, 0.3), (It, 0.3)]),
        ("iendo", &[(Es, 0.9)]),
        ("mente", &[(Es, 0.3), (It, 0.3), (Pt, 0.3)]),
        ("ería", &[(Es, 0.8)]),
        ("zione", &[(It, 1.0)]),
        ("zioni", &[(It, 1.0)]),
        ("ità", &[(It, 1.0)]),
        ("ezza", &[(It, 0.8)]),
        ("etto", &[(It, 0.6)]),
        ("endo", &[(It, 0.5), (Pt, 0.3)]),
        ("ção", &[(Pt, 1.0)]),
        ("ções", &[(Pt, 1.0)]),
        ("ão", &[(Pt, 0.9)]),
        ("ões", &[(Pt, 1.0)]),
        ("dade", &[(Pt, 0.8)]),
        ("agem", &[(Pt, 0.7)]),
        ("inho", &[(Pt, 0.8)]),
        ("heid", &[(Nl, 1.0)]),
        ("lijk", &[(Nl, 1.0)]),
        ("tje", &[(Nl, 0.9)]),
        ("tjes", &[(Nl, 1.0)]),
    ]
};

/// Letter sequences inside a word that point to a language, as (first, second, third)
/// lower-case bytes (`0` for a two-letter sequence).
const INFIXES: [([u8; 3], Evidence); 9] = {
    use Latin::*;
    [
        (*b"th\0", &[(En, 0.3)]),
        (*b"sch", &[(De, 0.4), (Nl, 0.3)]),
        (*b"ij\0", &[(Nl, 0.6)]),
        (*b"aa\0", &[(Nl, 0.5)]),
        (*b"oe\0", &[(Nl, 0.3)]),
        (*b"gli", &[(It, 0.4)]),
        (*b"nh\0", &[(Pt, 0.4)]),
        (*b"lh\0", &[(Pt, 0.4)]),
        // Spanish never doubles an s.
        (*b"ss\0", &[(Pt, 0.3), (Fr, 0.2), (It, 0.2), (En, 0.1), (De, 0.1)]),
    ]
};

/// The last letters of the [`INFIXES`], as a set of bytes: built from them, so that no
/// sequence can go unchecked.
static ENDS_AN_INFIX: [bool; 256] = infix_ends();

const fn infix_ends() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < INFIXES.len() {
        let seq = INFIXES[i].0;
        table[(if seq[2] == 0 { seq[1] } else { seq[2] }) as usize] = true;
        i += 1;
    }
    table
}

/// Romance languages rarely write w or k; the Germanic ones often do.
const W_OR_K: Evidence = &[(Latin::En, 0.12), (Latin::De, 0.12), (Latin::Nl, 0.12)];

/// An ending of [`SUFFIXES`], packed for comparison with a word's [`last_bytes`].
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// The ending's bytes, last byte lowest, as [`last_bytes`] packs a word's.
    packed: u64,
    /// Ones over the ending's bytes.
    mask: u64,
    len: usize,
    evidence: Evidence,
}

/// A word's last eight bytes (all of a shorter word), the last byte lowest: a word ends with
/// an ending when the ending's bytes match these under its mask. One comparison of integers
/// instead of a call to `memcmp` per ending a word's last letter could belong to.
fn last_bytes(word: &[u8]) -> u64 {
    match word.last_chunk::<8>() {
        Some(last) => u64::from_be_bytes(*last),
        None => word.iter().fold(0, |packed, &b| (packed << 8) | u64::from(b)),
    }
}

/// [`SUFFIXES`] grouped by their last byte, so a word is only compared with the endings it
/// could have.
fn suffixes_ending_in(last: u8) -> &'static [Ending] {
    static BY_LAST: OnceLock<Vec<Vec<Ending>>> = OnceLock::new();
    let table = BY_LAST.get_or_init(|| {
        let mut table = vec![Vec::new(); 256];
        for &(suffix, evidence) in SUFFIXES {
            let bytes = suffix.as_bytes();
            assert!(bytes.len() <= 8, "an ending of more than eight bytes: {suffix}");
            if let Some(&b) = bytes.last() {
                let mask = u64::MAX >> (64 - 8 * bytes.len());
                let ending = Ending { packed: last_bytes(bytes), mask, len: bytes.len(), evidence };
                table[usize::from(b)].push(ending);
            }
        }
        table
    });
    &table[usize::from(last)]
}

fn function_words() -> &'static WordTable<u8> {
    static TABLE: OnceLock<WordTable<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let lists = [
            (Latin::En, EN),
            (Latin::Fr, FR),
            (Latin::De, DE),
            (Latin::Es, ES),
            (Latin::It, IT),
            (Latin::Pt, PT),
            (Latin::Nl, NL),
            (Latin::Other, OTHER_LATIN),
        ];
        WordTable::build(
            lists.into_iter().flat_map(|(lang, words)| {
                words.split_whitespace().map(move |w| (word_hash(w), lang.bit()))
            }),
            |a, b| a | b,
        )
    })
}

/// Evidence gathered from one text.
#[derive(Debug, Default)]
struct Tally {
    /// Word units per script group, indexed by [`Group`]: code and quotations discounted.
    units: [f32; 4],
    /// Units of each script group in the opening clause.
    lead: [f32; 4],
    /// Characters per CJK script, to tell Chinese, Japanese and Korean apart.
    han: f32,
    kana: f32,
    hangul: f32,
    cyrillic_words: u32,
    /// Words on lines of source code.
    code_words: u32,
    /// Letters only non-Russian Cyrillic alphabets have.
    cyrillic_foreign: u32,
    /// Evidence per Latin-script language, indexed by `Latin as usize`.
    latin: [f32; 8],
}

/// The script groups whose shares are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Cjk,
    Latin,
    Cyrillic,
    Other,
}

impl Tally {
    fn add_latin(&mut self, evidence: Evidence, weight: f32) {
        for &(lang, w) in evidence {
            self.latin[lang as usize] += w * weight;
        }
    }

    /// Tallies a Latin-script word; returns its units.
    /// `hash` is the word's [`word_hash`], when the caller has it already.
    fn latin_word(&mut self, word: &str, hash: Option<u64>, code: bool) -> f32 {
        let table = function_words();
        let short = if word.is_ascii() { word.len() <= 2 } else { word.chars().nth(2).is_none() };
        if let Some(mask) = table.get(hash.unwrap_or_else(|| word_hash(word))) {
            if code && word.len() == 1 {
                return SYMBOL_WORD_UNIT;
            }
            // Single letters ("a", "y", "e", "o") are function words in five languages and
            // variables in every formula: weak evidence.
            let weight = if word.len() == 1 { 0.3 } else { 1.0 };
            self.function_word(mask, weight);
            return if code { SYMBOL_WORD_UNIT } else { 1.0 };
        }
        self.word(word, 1.0, code);
        if code || short { SYMBOL_WORD_UNIT } else { 1.0 }
    }

    fn word(&mut self, word: &str, weight: f32, code: bool) {
        let table = function_words();
        let ascii = word.is_ascii();
        let apostrophe = if ascii {
            word.bytes().position(|b| b == b'\'')
        } else {
            word.find(['\'', '\u{2019}'])
        };
        if let Some(cut) = apostrophe {
            // Elisions: "l'homme", "dell'anno", "qu'il".
            let apostrophe = word[cut..].chars().next().map_or(1, char::len_utf8);
            if let Some(mask) = table.get(word_hash(&word[..cut + apostrophe])) {
                self.function_word(mask, weight);
            }
            if let Some(mask) = table.get(word_hash(&word[cut + apostrophe..])) {
                self.function_word(mask, weight);
            }
        } else if !code && word.len() >= 4 {
            self.word_shape(word, weight);
        }
        if !ascii {
            for c in word.chars() {
                if !c.is_ascii() {
                    self.add_latin(letter_evidence(fold(c)), weight);
                }
            }
        }
    }

    fn function_word(&mut self, mask: u8, weight: f32) {
        let share = weight / mask.count_ones() as f32;
        for lang in LATIN {
            if mask & lang.bit() != 0 {
                self.latin[lang as usize] += share;
            }
        }
    }

    fn word_shape(&mut self, word: &str, weight: f32) {
        let bytes = word.as_bytes();
        let Some(&last) = bytes.last() else { return };
        if word.len() >= 5 {
            let tail = last_bytes(bytes);
            for ending in suffixes_ending_in(last) {
                if word.len() > ending.len && tail & ending.mask == ending.packed {
                    self.add_latin(ending.evidence, weight);
                }
            }
        }
        // One pass for all letter sequences; each counts once per word.
        let mut seen = 0u16;
        let mut w_or_k = false;
        let (mut p2, mut p1) = (0u8, 0u8);
        for &b in bytes {
            let b = b.to_ascii_lowercase();
            w_or_k |= b == b'w' || b == b'k';
            // Only a letter that ends some sequence can complete one; most letters end none.
            if ENDS_AN_INFIX[usize::from(b)] {
                for (i, (seq, _)) in INFIXES.iter().enumerate() {
                    let hit = if seq[2] == 0 {
                        p1 == seq[0] && b == seq[1]
                    } else {
                        p2 == seq[0] && p1 == seq[1] && b == seq[2]
                    };
                    seen |= u16::from(hit) << i;
                }
            }
            (p2, p1) = (p1, b);
        }
        for (i, (_, evidence)) in INFIXES.iter().enumerate() {
            if seen & (1 << i) != 0 {
                self.add_latin(evidence, weight);
            }
        }
        if w_or_k {
            self.add_latin(W_OR_K, weight);
        }
    }
}

/// The language of a text, and a second language when the text mixes two.
pub fn detect(text: &str) -> LanguageGuess {
    let mut reader = Reader::default();
    for line in head(text, SCAN_BYTES).split('\n') {
        reader.line(line);
    }
    reader.finish()
}

/// Language evidence gathered line by line: from a text of its own ([`detect`]), or fed by
/// the feature scan, which tokenizes the same opening of the text and hashes its words
/// anyway (`Scan::with_language`).
#[derive(Debug)]
pub(crate) struct Reader {
    tally: Tally,
    in_fence: bool,
    /// Still in the opening clause.
    lead: bool,
    /// The current line is code or a formula.
    code: bool,
    /// Inside quotation marks on the current line.
    quoted: bool,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader { tally: Tally::default(), in_fence: false, lead: true, code: false, quoted: false }
    }
}

impl Reader {
    /// How much of a text the evidence is read from: its first `BYTES` bytes, cut as
    /// [`head`] cuts them.
    pub(crate) const BYTES: usize = SCAN_BYTES;

    /// Reads one whole line (of the first [`Reader::BYTES`] of a text).
    pub(crate) fn line(&mut self, line: &str) {
        if is_fence(line) {
            self.fence();
            return;
        }
        let code = self.in_fence || is_code_line(line);
        self.start_line(line, code);
        let mut tokens = Tokens::new(line);
        while let Some(token) = tokens.next() {
            self.token(token, tokens.offset(), None);
        }
        self.end_line();
    }

    /// A fence line: a code block opens or closes.
    pub(crate) fn fence(&mut self) {
        self.in_fence = !self.in_fence;
        self.lead = false;
    }

    /// Starts a line that is not a fence; `code` is whether it lies in a code block or
    /// reads as code (`is_code_line`).
    pub(crate) fn start_line(&mut self, line: &str, code: bool) {
        self.code = code || is_formula(line);
        self.quoted = false;
    }

    /// One token of the current line; `offset` is where the line's tokens stand after it,
    /// and `hash` the [`word_hash`] of a word when the caller has it.
    pub(crate) fn token(&mut self, token: Token<'_>, offset: usize, hash: Option<u64>) {
        self.lead &= offset <= LEAD_BYTES;
        let code = self.code;
        let tally = &mut self.tally;
        let (group, mut units) = match token {
            Token::Word(word, Script::Latin) => {
                tally.code_words += u32::from(code);
                (Group::Latin, tally.latin_word(word, hash, code))
            }
            Token::Word(word, Script::Cyrillic) => {
                tally.cyrillic_words += 1;
                tally.cyrillic_foreign +=
                    word.chars().filter(|&c| is_foreign_cyrillic(fold(c))).count() as u32;
                (Group::Cyrillic, if code { SYMBOL_WORD_UNIT } else { 1.0 })
            }
            Token::Word(..) => (Group::Other, 1.0),
            Token::Cjk(run) => {
                let mut units = 0.0;
                for c in run.chars() {
                    match Script::of(c) {
                        Script::Han => {
                            tally.han += 1.0;
                            units += HAN_UNIT;
                        }
                        Script::Kana => {
                            tally.kana += 1.0;
                            units += KANA_UNIT;
                        }
                        _ => {
                            tally.hangul += 1.0;
                            units += HANGUL_UNIT;
                        }
                    }
                }
                (Group::Cjk, units)
            }
            Token::Symbol(':' | '：' | '。' | '?' | '？' | '!' | '！') => {
                self.lead = false;
                return;
            }
            Token::Symbol('.') if !self.quoted => {
                self.lead = false;
                return;
            }
            Token::Symbol('"') => {
                self.quoted = !self.quoted;
                return;
            }
            Token::Symbol('“' | '「' | '『' | '«') => {
                self.quoted = true;
                return;
            }
            Token::Symbol('”' | '」' | '』' | '»') => {
                self.quoted = false;
                return;
            }
            Token::Number(_) | Token::Symbol(_) => return,
        };
        if self.quoted {
            // Quoted words are the material, not the voice.
            units *= QUOTED_FACTOR;
        }
        tally.units[group as usize] += units;
        if self.lead {
            tally.lead[group as usize] += units;
        }
    }

    /// Ends the current line, and with it the opening clause.
    pub(crate) fn end_line(&mut self) {
        self.lead = false;
    }

    pub(crate) fn finish(&self) -> LanguageGuess {
        self.tally.decide()
    }
}

/// Whether a line is mostly a formula, whose one-letter words are variables.
fn is_formula(line: &str) -> bool {
    let operators = if line.is_ascii() {
        // Most lines: count bytes, no decoding.
        line.bytes().filter(|b| matches!(b, b'=' | b'+' | b'*' | b'/' | b'^')).count()
    } else {
        line.chars()
            .filter(|c| {
                matches!(c, '=' | '+' | '*' | '/' | '^' | '＝' | '＋' | '－' | '∧' | '×' | '÷')
            })
            .count()
    };
    operators >= 3
}

/// Letters of the Ukrainian, Belarusian, Serbian and Macedonian alphabets that Russian does
/// not use.
fn is_foreign_cyrillic(c: char) -> bool {
    matches!(c, 'і' | 'ї' | 'є' | 'ґ' | 'ў' | 'ј' | 'љ' | 'њ' | 'ћ' | 'ђ' | 'џ' | 'ѓ' | 'ќ' | 'ѕ')
}

/// One script's share of a text, with the language it stands for.
#[derive(Debug, Clone, Copy)]
struct Share {
    language: Language,
    units: f32,
    /// How sure the language is given the script (1 for Han, Kana, Hangul).
    certainty: f32,
}

impl Tally {
    fn decide(&self) -> LanguageGuess {
        // Indexed by `Group`.
        let by_group: [Share; 4] = [
            self.cjk_share(),
            self.latin_share(),
            self.cyrillic_share(),
            Share {
                language: Language::Other,
                units: self.units[Group::Other as usize],
                certainty: 0.8,
            },
        ];
        let total: f32 = by_group.iter().map(|s| s.units).sum();
        let mut order = [0usize, 1, 2, 3];
        order.sort_by(|&a, &b| by_group[b].units.total_cmp(&by_group[a].units));
        if let Some(lead) = self.lead_group() {
            // The user's own clause outranks what they quoted.
            if let Some(i) = order.iter().position(|&g| g == lead as usize) {
                order[..=i].rotate_right(1);
            }
        }
        let (first, second) = (by_group[order[0]], by_group[order[1]]);
        if first.units < 0.5 {
            return LanguageGuess { primary: Language::Unknown, secondary: None, confidence: 0.0 };
        }
        let secondary = (second.units >= SECONDARY_UNITS
            && second.units >= SECONDARY_SHARE * total
            && second.language != first.language)
            .then_some(second.language)
            .or_else(|| {
                // Code is written in English keywords and identifiers: around another
                // language's prose, it is the mix the secondary language is for.
                let code = self.code_words >= CODE_WORDS_FOR_SECONDARY;
                (code && !matches!(first.language, Language::En | Language::Unknown))
                    .then_some(Language::En)
            });
        // Little text is weak evidence even when all of it agrees.
        let amount = 1.0 - (-first.units).exp();
        let share = (first.units / total).max(0.5);
        let confidence = share * first.certainty * amount;
        LanguageGuess { primary: first.language, secondary, confidence: confidence.clamp(0.0, 1.0) }
    }

    /// The script group that clearly dominates the opening clause, if one does.
    fn lead_group(&self) -> Option<Group> {
        let total: f32 = self.lead.iter().sum();
        if total < LEAD_MIN_UNITS {
            return None;
        }
        [Group::Cjk, Group::Latin, Group::Cyrillic, Group::Other]
            .into_iter()
            .find(|&g| self.lead[g as usize] >= LEAD_DOMINANCE * total)
    }

    fn cjk_share(&self) -> Share {
        let units = self.units[Group::Cjk as usize];
        let language = if self.hangul > 0.0 && self.hangul * 3.0 >= self.han {
            Language::Ko
        } else if self.kana > 0.0 && (self.kana >= 2.0 || self.kana * 5.0 >= self.han) {
            Language::Ja
        } else {
            Language::Zh
        };
        Share { language, units, certainty: 1.0 }
    }

    fn cyrillic_share(&self) -> Share {
        let foreign = self.cyrillic_foreign as f32 >= (0.1 * self.cyrillic_words as f32).max(1.0);
        let language = if foreign { Language::Other } else { Language::Ru };
        Share { language, units: self.units[Group::Cyrillic as usize], certainty: 0.95 }
    }

    fn latin_share(&self) -> Share {
        let units = self.units[Group::Latin as usize];
        let evidence: f32 = self.latin.iter().sum();
        let (best, best_score) = LATIN
            .into_iter()
            .map(|lang| (lang, self.latin[lang as usize]))
            .fold((Latin::En, 0.0f32), |acc, x| if x.1 > acc.1 { x } else { acc });
        if best_score <= 0.0 {
            // Latin letters and nothing else to go on ("Kubernetes", "ok"): the lingua franca
            // of prompts, said without conviction.
            return Share { language: Language::En, units, certainty: 0.35 };
        }
        // A softmax over the languages' evidence, damped by how much evidence there is.
        let denominator: f32 =
            self.latin.iter().map(|&s| (2.0 * (s - best_score)).exp()).sum::<f32>();
        let p = 1.0 / denominator;
        let certainty = (p * (1.0 - (-1.5 * evidence).exp())).max(0.35);
        Share { language: best.language(), units, certainty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_endings_match_as_ends_with_does() {
        // Words of every length up to twelve bytes, built from the endings' own letters (so
        // that endings, near misses and multi-byte letters all occur), with other bytes.
        let alphabet: Vec<char> =
            SUFFIXES.iter().flat_map(|(suffix, _)| suffix.chars()).chain(['x', 'Z', 'É']).collect();
        let mut next = crate::features::xorshift(0x853c_49e6_748f_ea9b);
        let mut matches = 0;
        for _ in 0..200_000 {
            let len = (next() % 12) as usize + 1;
            let word: String =
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let bytes = word.as_bytes();
            let tail = last_bytes(bytes);
            let candidates = suffixes_ending_in(*bytes.last().unwrap());
            let packed: Vec<u64> =
                candidates.iter().filter(|e| tail & e.mask == e.packed).map(|e| e.packed).collect();
            let expected: Vec<u64> = SUFFIXES
                .iter()
                .filter(|(suffix, _)| word.ends_with(suffix))
                .map(|(suffix, _)| last_bytes(suffix.as_bytes()))
                .collect();
            assert_eq!(packed, expected, "{word:?}");
            matches += expected.len();
        }
        assert!(matches > 1_000, "the words hit the endings too rarely to test them: {matches}");
    }
}
