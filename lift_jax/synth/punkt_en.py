"""English Punkt parameters shipped as plain data (no pickle, nothing downloaded at run time).

`ABBREVIATIONS` are lower-case word types without their final period ("u.s" for "U.S.").
`LOWERCASE_WORDS` are common words that appear lower-case inside sentences: a capitalised one after an
abbreviation ("... in the U.S. The ...") is taken as the start of a new sentence (Punkt's orthographic
heuristic), while an unknown capitalised word ("Dr. Smith", "the U.S. Army") is not.
"""

ABBREVIATIONS = frozenset(
    (
        "mr", "mrs", "ms", "messrs", "mme", "mlle", "dr", "prof", "sr", "jr", "st", "rev", "hon", "gen",
        "col", "maj", "lt", "sgt", "capt", "cmdr", "adm", "gov", "sen", "rep", "pres", "fr", "mt", "ft",
        "etc", "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "ca", "ibid", "inc", "ltd", "co", "corp",
        "llc", "plc", "bros", "dept", "univ", "assn", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "ave", "blvd", "rd", "no", "nos", "vol", "vols", "pp", "fig",
        "figs", "eq", "eqs", "ed", "eds", "ch", "chap", "sec", "art", "hr", "hrs", "sq", "lb", "lbs", "oz",
        "a.m", "p.m", "u.s", "u.s.a", "u.k", "u.n", "e.u", "d.c", "ph.d", "m.d", "b.a", "m.a", "b.sc",
        "m.sc",
    )
)

LOWERCASE_WORDS = frozenset(
    (
        "a", "about", "after", "all", "also", "although", "an", "and", "another", "any", "are", "as", "at",
        "because", "before", "both", "but", "by", "can", "despite", "did", "do", "does", "during", "each",
        "either", "even", "every", "few", "for", "from", "had", "has", "have", "he", "her", "here", "hers",
        "his", "how", "however", "if", "in", "into", "is", "it", "its", "many", "may", "meanwhile", "more",
        "most", "much", "my", "neither", "no", "nor", "not", "now", "of", "on", "once", "one", "only", "or",
        "other", "our", "over", "she", "since", "so", "some", "such", "than", "that", "the", "their", "then",
        "there", "these", "they", "this", "those", "though", "through", "thus", "to", "today", "too", "two",
        "under", "unlike", "until", "upon", "was", "we", "were", "what", "when", "where", "which", "while",
        "who", "whose", "why", "will", "with", "within", "without", "yet", "you", "your",
    )
)
