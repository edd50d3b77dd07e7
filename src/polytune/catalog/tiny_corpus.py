"""The generated text polytune-tiny's tokenizer is trained on.

The tokenizer should split everyday English, numbers, punctuation and made-up names into
few pieces, so the corpus mixes common words in question/answer/sentence shapes with
numbers, invented proper nouns and the punctuation people type. Everything comes from one
seeded `random.Random` over fixed lists, so the corpus is identical in every process.
"""

from __future__ import annotations

import random

_WORDS = """
a about above across act add after again against age ago air all almost alone along already
also always am among an and animal another answer any anyone anything appear apple are area
arm around arrive art as ask at away baby back bad bag ball bank base be bear beat beautiful
because become bed been before began begin behind being believe below best better between big
bird black blood blue board boat body bone book born both bottom box boy bread break bright
bring brother brown build burn busy but buy by call came can capital car care carry case cat
catch cause center certain chair chance change character charge check child children choose
circle city class clean clear close cloud coast cold color come common company complete
compute condition consider contain continue control cook cool copy corn correct cost could
count country course cover create cross crowd cry current cut dance dark data day dead deal
dear death decide deep degree describe desert design develop did die differ different
difficult direct discover distance divide do doctor does dog dollar done door double down draw
dream dress drink drive drop dry during each early earth east easy eat edge effect egg eight
either electric element else end enemy energy engine enough enter equal even evening event
ever every exact example except excite exercise expect experience explain eye face fact fair
fall family famous far farm fast father fear feel feet few field fifteen fifty fight figure
fill final find fine finger finish fire first fish five flat floor flow flower fly follow food
foot for force forest form forward found four free fresh friend from front fruit full fun game
garden gas gather gave general gentle get girl give glad glass go gold gone good got govern
grand grass gray great green ground group grow guess guide had hair half hand happen happy
hard has hat have he head hear heard heart heat heavy held help her here high hill him his
history hold hole home hope horse hot hour house how huge human hundred hunt hurry I ice idea
if important in inch include indicate industry information insect inside instead interest
invent iron is island it its job join journey joy jump just keep key kind king kitchen knew
know lady lake land language large last late laugh law lay lead learn least leave left leg
length less let letter level lie life lift light like line list listen little live long look
lost lot loud love low machine made magic main major make man many map mark market mass
master match matter may me mean measure meat meet melody member memory men metal method middle
might mile milk million mind minute miss model modern moment money month moon more morning
most mother motion mount mountain mouth move much music must my name nation natural nature near
necessary neck need neighbor never new next night nine no noise none noon nor north nose not
note nothing notice noun now number object observe ocean of off offer office often oh oil old
on once one only open operate opposite or order other our out over own page paint pair paper
paragraph parent part party pass past path pattern pay people perhaps person phrase pick
picture piece place plain plan planet plant play please plural poem point poor populate port
position possible post pound power practice prepare present press pretty print probable
problem process produce product program protect prove provide pull push put quart question
quick quiet quite race radio rain raise ran range rather reach read ready real reason receive
record red region remember repeat reply report represent require rest result return rich ride
right ring rise river road rock roll room root rope rose round row rule run safe said sail salt
same sand sat save saw say scale school science score sea search season seat second section
see seed seem select self sell send sense sentence separate serve set settle seven several
shall shape share sharp she sheep shell shine ship shoe shop shore short should shoulder shout
show side sight sign silent silver similar simple since sing single sister sit six size skill
skin sky sleep slow small smell smile snow so soft soil soldier solution solve some son song
soon sound south space speak special speech speed spell spend spring square stand star start
state station stay steel step stick still stone stood stop store story straight strange
stream street stretch string strong student study subject substance success such sudden sugar
suggest summer sun supply support sure surface surprise swim syllable system table tail take
talk tall teach team tell temperature ten term test than thank that the their them then there
these they thick thin thing think third this those though thought thousand three through
throw tie time tiny to today together told tone too took tool top total touch toward town
track trade train travel tree triangle trip trouble truck true try tube turn twelve twenty
two type under unit until up us use usual valley value very village visit voice vowel wait
walk wall want war warm was wash watch water wave way we wear weather week weight well went
were west what wheel when where whether which while white who whole whose why wide wife wild
will win wind window wing winter wire wise wish with without woman women wonder wood word
work world would write written wrong wrote yard year yellow yes yet you young your zero
""".split()

_QUESTION_STARTS = [
    "What is",
    "What are",
    "Who is",
    "Who was",
    "Where is",
    "When did",
    "Why does",
    "How many",
    "How much",
    "Which",
    "Can you",
    "Could you",
    "Do you",
    "Is it",
    "Tell me",
    "Name the",
    "Please",
    "Explain",
]
_ANSWER_STARTS = [
    "The answer is",
    "It is",
    "Yes,",
    "No,",
    "Sure.",
    "Of course.",
    "I think",
    "There are",
    "That was",
    "Because",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "zu",
    "ren",
    "tor",
    "qua",
    "vel",
    "bri",
    "sen",
    "dor",
    "ix",
    "am",
    "ol",
    "ut",
    "mar",
    "pex",
    "tha",
    "gri",
    "on",
    "el",
    "ar",
    "is",
    "en",
    "ia",
    "ville",
    "berg",
    "ton",
    "ford",
    "stan",
    "land",
]
_PUNCTUATION = [
    ".",
    ",",
    "?",
    "!",
    ":",
    ";",
    "-",
    "'",
    '"',
    "(",
    ")",
    "/",
    "%",
    "$",
    "#",
    "&",
    "*",
    "+",
    "=",
    "@",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "_",
    "`",
    "~",
    "|",
    "^",
    "\\",
]
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _number(rng: random.Random) -> str:
    shape = rng.randrange(5)
    if shape == 0:
        return str(rng.randint(0, 9))
    if shape == 1:
        return str(rng.randint(10, 99))
    if shape == 2:
        return str(rng.randint(100, 9999))
    if shape == 3:
        return f"{rng.randint(0, 999)}.{rng.randint(0, 99)}"
    return f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"


def _phrase(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n_words))


def _line(rng: random.Random) -> str:
    shape = rng.randrange(6)
    if shape == 0:
        return f"{rng.choice(_QUESTION_STARTS)} the {_phrase(rng, rng.randint(1, 4))} of {_name(rng)}?"
    if shape == 1:
        return f"{rng.choice(_ANSWER_STARTS)} {_phrase(rng, rng.randint(1, 6))} {_number(rng)}."
    if shape == 2:
        return f"{_name(rng)}. {_name(rng)} {_phrase(rng, 3)}, {_number(rng)} {_phrase(rng, 2)}!"
    if shape == 3:
        return (
            f"On {rng.choice(_DAYS)}, {rng.randint(1, 28)} {rng.choice(_MONTHS)} "
            f"{rng.randint(1900, 2099)}, {_phrase(rng, 5)}."
        )
    if shape == 4:
        marks = "".join(rng.choice(_PUNCTUATION) for _ in range(rng.randint(1, 3)))
        return f"{_phrase(rng, 2).capitalize()}{marks} {_number(rng)}{rng.choice(_PUNCTUATION)} {_name(rng)}"
    return _phrase(rng, rng.randint(4, 12)).capitalize() + rng.choice([".", "?", "!", "..."])


def corpus_lines(seed: int, n_lines: int) -> list[str]:
    """`n_lines` lines of generated text, the same for the same arguments in every process."""
    rng = random.Random(seed)
    words = [*_WORDS, *(w.capitalize() for w in _WORDS), *(w.upper() for w in _WORDS[:50])]
    # Every word once on its own, so rare words still end up as whole tokens.
    lines = [" ".join(words[i : i + 16]) for i in range(0, len(words), 16)]
    # Several sentences per line, so sentence-initial words also appear after a space.
    lines.extend(" ".join(_line(rng) for _ in range(rng.randint(1, 3))) for _ in range(n_lines))
    return lines
