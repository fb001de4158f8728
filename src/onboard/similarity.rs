//! How alike an HR code and a Speakap group name are, from 0 to 1: names normalised (case,
//! accents, punctuation, words such as "store" or "afdeling" that say what kind of group it
//! is), then equal, one's words inside the other's, a code abbreviating a word, or else the
//! share of letter pairs they have in common (Sørensen–Dice).

/// Words that name the kind of group rather than which one, in Dutch, English and German.
const KIND_WORDS: [&str; 22] = [
    "store",
    "shop",
    "location",
    "site",
    "branch",
    "department",
    "dept",
    "team",
    "bu",
    "winkel",
    "filiaal",
    "vestiging",
    "locatie",
    "afdeling",
    "standort",
    "filiale",
    "niederlassung",
    "abteilung",
    "bereich",
    "markt",
    "the",
    "de",
];

/// Lower case, accents folded, words of letters and digits without the kind words.
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ß' => 's',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    let all: Vec<String> = folded.split_whitespace().map(str::to_string).collect();
    let kept: Vec<String> = all
        .iter()
        .filter(|w| !KIND_WORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    // A name made of kind words alone ("Head Office" is not, "Store" is) keeps them.
    if kept.is_empty() { all } else { kept }
}

/// How alike `code` and `name` are: 1 for the same name, 0 for nothing in common.
pub fn similarity(code: &str, name: &str) -> f64 {
    let (a, b) = (words(code), words(name));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (joined_a, joined_b) = (a.concat(), b.concat());
    if joined_a == joined_b {
        return 1.0;
    }
    let inside = |small: &[String], large: &[String]| small.iter().all(|w| large.contains(w));
    if inside(&a, &b) || inside(&b, &a) {
        return 0.9;
    }
    // "AMS" for Amsterdam, "DH" for Den Haag.
    let initials: String = b.iter().filter_map(|w| w.chars().next()).collect();
    let abbreviates = joined_a.len() >= 2
        && (joined_a == initials
            || (joined_a.len() >= 3 && b.iter().any(|w| w.starts_with(&joined_a))));
    if abbreviates {
        return 0.75;
    }
    dice(&joined_a, &joined_b)
}

/// The Sørensen–Dice coefficient over the letter pairs of two words.
fn dice(a: &str, b: &str) -> f64 {
    let pairs = |s: &str| -> Vec<(char, char)> {
        let chars: Vec<char> = s.chars().collect();
        chars.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (left, mut right) = (pairs(a), pairs(b));
    if left.is_empty() || right.is_empty() {
        return 0.0;
    }
    let total = left.len() + right.len();
    let mut common = 0;
    for pair in &left {
        if let Some(at) = right.iter().position(|p| p == pair) {
            right.swap_remove(at);
            common += 1;
        }
    }
    2.0 * common as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::similarity;

    #[test]
    fn codes_meet_the_names_they_stand_for() {
        assert_eq!(similarity("Amsterdam", "Store Amsterdam"), 1.0);
        assert_eq!(similarity("den-haag", "Vestiging Den Haag"), 1.0);
        assert_eq!(similarity("Zürich", "Filiale Zurich"), 1.0);
        assert_eq!(similarity("Amsterdam Noord", "Amsterdam"), 0.9);
        assert_eq!(similarity("AMS", "Store Amsterdam"), 0.75);
        assert_eq!(similarity("DH", "Den Haag"), 0.75);
        let translated = similarity("Bakkerij", "Bakery");
        assert!((0.5..0.9).contains(&translated), "{translated}");
        assert!(similarity("102", "Supply Chain") < 0.5);
        assert!(similarity("Utrecht", "Rotterdam") < 0.5);
        assert_eq!(similarity("", "Store"), 0.0);
    }
}
