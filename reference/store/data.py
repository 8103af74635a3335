"""Synthetic stand-ins for SWAG (``regular``) and SQuAD (``plain_text``).

The rows are generated from word lists and sentence templates with one seeded ``random.Random``, so
every build produces the same bytes. The first rows are the records the assignment prints, copied
exactly, so that a notebook's printed outputs and the preprocessing checks (``2 4 [30, 25, 30, 28]``)
come out as they do on the real data. The rest is varied enough English for a tokenizer to learn from
and for a model to train on for a few steps; it is not meant to be answerable by common sense.
"""

from __future__ import annotations

import random
import string
from typing import Any

SEED = 20240117

SWAG_SIZES = {"train": 300, "validation": 100, "test": 100}
SQUAD_SIZES = {"train": 300, "validation": 100}

# The records printed in the assignment text (train[0]) and the real train[1] of SWAG.
SWAG_TRAIN_HEAD: list[dict[str, Any]] = [
    {
        "video-id": "anetv_jkn6uvmqwh4",
        "fold-ind": "3416",
        "startphrase": "Members of the procession walk down the street holding small horn brass instruments. A drum line",
        "sent1": "Members of the procession walk down the street holding small horn brass instruments.",
        "sent2": "A drum line",
        "gold-source": "gold",
        "ending0": "passes by walking down the street playing their instruments.",
        "ending1": "has heard approaching them.",
        "ending2": "arrives and they're outside dancing and asleep.",
        "ending3": "turns the lead singer watches the performance.",
        "label": 0,
    },
    {
        "video-id": "anetv_jkn6uvmqwh4",
        "fold-ind": "3417",
        "startphrase": "A drum line passes by walking down the street playing their instruments. Members of the procession",
        "sent1": "A drum line passes by walking down the street playing their instruments.",
        "sent2": "Members of the procession",
        "gold-source": "gen",
        "ending0": "are playing ping pong and celebrating one left each in quick.",
        "ending1": "wait slowly towards the cadets.",
        "ending2": "continues to play as well along the crowd along with the band being interviewed.",
        "ending3": "continue to play marching, interspersed.",
        "label": 3,
    },
]

_NOTRE_DAME_CONTEXT = (
    "Architecturally, the school has a Catholic character. Atop the Main Building's gold dome is a golden "
    "statue of the Virgin Mary. Immediately in front of the Main Building and facing it, is a copper statue "
    'of Christ with arms upraised with the legend "Venite Ad Me Omnes". Next to the Main Building is the '
    "Basilica of the Sacred Heart. Immediately behind the basilica is the Grotto, a Marian place of prayer "
    "and reflection. It is a replica of the grotto at Lourdes, France where the Virgin Mary reputedly "
    "appeared to Saint Bernadette Soubirous in 1858. At the end of the main drive (and in a direct line "
    "that connects through 3 statues and the Gold Dome), is a simple, modern stone statue of Mary."
)

SQUAD_TRAIN_HEAD: list[dict[str, Any]] = [
    {
        "id": "5733be284776f41900661182",
        "title": "University_of_Notre_Dame",
        "context": _NOTRE_DAME_CONTEXT,
        "question": "To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?",
        "answers": {"text": ["Saint Bernadette Soubirous"], "answer_start": [515]},
    },
]

# --- word lists ---------------------------------------------------------------------------------

FIRST_NAMES = (
    "Sarah Harry Amelia Oliver Maria James Fatima Lucas Chen Priya Diego Hannah Tomas Aisha Noah Elena "
    "Samuel Ingrid Kofi Yuki Rafael Clara Mateo Leila Victor Greta Omar Sofia Daniel Anika Felix Rosa "
    "Arthur Mei Jonas Beatrice Kwame Helena Ivan Lucia Edgar Nadia Hugo Irene Pablo Vera"
).split()
LAST_NAMES = (
    "Whitfield Okafor Lindqvist Moreau Tanaka Castillo Brennan Novak Haddad Fischer Romano Kowalski "
    "Abernathy Delacroix Sorensen Mbeki Ferreira Yamamoto Gallagher Petrov Chandra Vasquez Holloway "
    "Marchetti Oyelaran Bergstrom Dufresne Nakamura Ellison Quintero"
).split()
PLACE_ROOTS = (
    "River Oak Stone Maple Silver Ash Green Clear Fair Wolf Elder High Iron Marsh Pine Red Cedar North "
    "Amber Lake Brook Hazel Glen Copper Willow Ember Frost Thorn Raven Summer"
).split()
PLACE_TAILS = "ton field ford bury haven wick mouth dale port vale gate crest moor ridge wood".split()
INSTITUTIONS = (
    "University, Institute of Technology, Conservatory of Music, Museum of Natural History, Botanical "
    "Garden, Public Library, Observatory, Academy of Fine Arts, Maritime Museum, School of Medicine, "
    "Railway Company, Football Club, Symphony Orchestra, Historical Society, Science Centre"
).split(", ")
SUBJECTS = (
    "chemistry, mathematics, philosophy, marine biology, architecture, economics, linguistics, "
    "astronomy, medicine, geology, music theory, political science, computer science, agriculture, "
    "engineering, classical history, psychology, statistics"
).split(", ")
INDUSTRIES = (
    "shipbuilding, textile weaving, fishing, wine making, coal mining, tourism, software development, "
    "glass blowing, furniture making, dairy farming, printing, steel production, banking, pottery, "
    "timber, salt harvesting, clock making, brewing"
).split(", ")
MATERIALS = (
    "granite, red brick, limestone, oak timber, marble, sandstone, steel and glass, white plaster".split(", ")
)
BUILDINGS = "main hall, clock tower, east library, old chapel, concert hall, town hall, north gate, lecture theatre".split(
    ", "
)
LANDMARKS = (
    "harbour, central square, river bridge, old market, railway station, cathedral, city park, "
    "lighthouse, botanical garden, royal palace, stone fountain, western hills"
).split(", ")
ROLES = "president, director, chancellor, mayor, conductor, curator, captain, chief engineer, head librarian".split(
    ", "
)
QUALITIES = "rare, ancient, famous, unusual, detailed, colourful, enormous, delicate, valuable, modern".split(
    ", "
)
THINGS = (
    "manuscripts, stained glass windows, fossil collection, rose gardens, steam engines, telescopes, "
    "paintings, maps, musical instruments, clocks, sculptures, tapestries, coins, seed bank"
).split(", ")
EVENTS = (
    "a great fire, a severe flood, an outbreak of fever, a long drought, a major earthquake, a harsh "
    "winter, a workers' strike, a royal visit, a famous trial, a bank collapse"
).split(", ")
MONTHS = "January February March April May June July August September October November December".split()
ADJECTIVES = (
    "quiet busy narrow wide ancient modern bright dark small large famous humble careful gentle proud "
    "steep shallow crowded empty warm cold bitter sweet heavy light"
).split()
NOUNS = (
    "visitors students merchants farmers sailors scholars workers children musicians painters builders "
    "priests soldiers travellers engineers writers doctors bakers fishermen pilgrims"
).split()
VERBS_PAST = (
    "built restored visited described praised admired repaired expanded designed studied recorded "
    "protected decorated painted measured managed opened closed funded"
).split()
TECH = (
    "TPUs GPUs processors transformers neural networks datasets tokenizers research projects clusters "
    "benchmarks compilers databases servers satellites sensors batteries"
).split(", ") + ["machine learning", "power efficiency", "NLP"]

# SWAG-style scenes: who does what, and endings that fit or do not.
SWAG_SUBJECTS = (
    "A man, A woman, The boy, A girl, Two men, Someone, The crowd, A young child, The chef, A gymnast, "
    "The dancers, An old man, A teenager, The players, A lady, The coach, People, The worker, "
    "A little girl, The team"
).split(", ")
SWAG_PRONOUNS = "He, She, They, Someone, The man, The woman, The girl, The boy, We, The people".split(", ")
SWAG_ACTIONS = (
    "is standing in a kitchen chopping onions on a wooden board, "
    "walks across a snowy field holding a pair of skis, "
    "sits at a piano in a dimly lit room, "
    "is shown kneeling beside a bicycle with a flat tire, "
    "jumps into a swimming pool from a high diving board, "
    "paints a fence in the backyard with a wide brush, "
    "is playing the violin on a busy street corner, "
    "pulls a heavy rope during a tug of war game, "
    "stands on a balance beam in a large gymnasium, "
    "mixes flour and eggs in a large metal bowl, "
    "climbs up a steep rock wall wearing a helmet, "
    "throws a frisbee to a dog in the park, "
    "is sitting on a horse at the edge of a field, "
    "rakes fallen leaves into a big pile, "
    "washes a red car in the driveway with a sponge, "
    "lifts a heavy barbell over his head, "
    "is ironing a white shirt on a board, "
    "shovels snow off the front steps of a house, "
    "serves a tennis ball across the net, "
    "rows a small boat across a calm lake"
).split(", ")
SWAG_ENDINGS = (
    "smiles at the camera and waves goodbye., "
    "puts the tool down and walks away., "
    "continues to move slowly along the path., "
    "falls to the ground and laughs loudly., "
    "picks up a towel and wipes his face., "
    "turns around and speaks to the audience., "
    "finishes the routine and raises both arms., "
    "pours the mixture into a shallow pan., "
    "throws the ball high into the air., "
    "opens the door and steps outside., "
    "ties the laces of her shoes tightly., "
    "looks down at the water below., "
    "plays a few more notes and stops., "
    "kicks the pile of leaves across the yard., "
    "rides away on the bicycle down the road., "
    "adds a pinch of salt to the bowl., "
    "claps along with the cheering crowd., "
    "lands on the mat and bows to the judges., "
    "hands the brush to a friend nearby., "
    "sprays the car with water from a hose., "
    "is eating a sandwich on a bench., "
    "dances wildly around the empty stage., "
    "reads a newspaper next to the fireplace., "
    "drives a truck into the parking lot., "
    "folds the shirt and places it in a drawer., "
    "pats the horse gently on the neck., "
    "reaches the top and waves to the people below., "
    "drops the barbell onto the floor with a crash."
).split(", ")
MOVIES = (
    "Harry_Potter_and_the_order_of_phoenix, The_Lost_Weekend, Morning_Glory, Bad_Santa, Gran_Torino, "
    "Charade, Juno, Hanna, Inside_Man, Julie_and_Julia, Larry_Crowne, Sherlock_Holmes"
).split(", ")


def _id(rng: random.Random, n: int, alphabet: str = "0123456789abcdef") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# --- SWAG ---------------------------------------------------------------------------------------


def _swag_row(rng: random.Random, labelled: bool) -> dict[str, Any]:
    subject = rng.choice(SWAG_SUBJECTS)
    sent1 = f"{subject} {rng.choice(SWAG_ACTIONS)}."
    sent2 = rng.choice(SWAG_PRONOUNS)
    if rng.random() < 0.3:
        sent2 += " " + rng.choice(["then", "now", "slowly", "finally", "quickly"])
    endings = rng.sample(SWAG_ENDINGS, 4)
    if rng.random() < 0.5:
        video = "anetv_" + _id(rng, 11, string.ascii_letters + string.digits + "-_")
    else:
        video = f"lsmdc{rng.randint(1001, 3099)}_{rng.choice(MOVIES)}-{rng.randint(10000, 99999)}"
    row: dict[str, Any] = {
        "video-id": video,
        "fold-ind": str(rng.randint(0, 20000)),
        "startphrase": f"{sent1} {sent2}",
        "sent1": sent1,
        "sent2": sent2,
        "gold-source": rng.choice(["gold", "gen"]),
    }
    for i, ending in enumerate(endings):
        row[f"ending{i}"] = ending
    row["label"] = rng.randrange(4) if labelled else -1
    return row


def swag_rows(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in SWAG_SIZES.items():
        head = [dict(r) for r in SWAG_TRAIN_HEAD] if split == "train" else []
        splits[split] = head + [_swag_row(rng, split != "test") for _ in range(size - len(head))]
    return splits


# --- SQuAD --------------------------------------------------------------------------------------


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _place(rng: random.Random) -> str:
    return rng.choice(PLACE_ROOTS) + rng.choice(PLACE_TAILS)


N_FACT_KINDS = 9


def _fact(rng: random.Random, place: str, inst: str, kind: int) -> tuple[str, list[tuple[str, str]]]:
    """One sentence of fact ``kind`` and the (question, answer span) pairs it supports."""
    name = f"the {place} {inst}"
    if kind == 0:
        year, who = str(rng.randint(1650, 1990)), _person(rng)
        return (
            f"{name[0].upper() + name[1:]} was founded in {year} by {who}.",
            [(f"When was {name} founded?", year), (f"Who founded {name}?", who)],
        )
    if kind == 1:
        building, landmark = rng.choice(BUILDINGS), rng.choice(LANDMARKS)
        material = rng.choice(MATERIALS)
        return (
            f"The {building}, made of {material}, stands close to the {landmark}.",
            [
                (f"What is the {building} made of?", material),
                (f"What does the {building} stand close to?", f"the {landmark}"),
            ],
        )
    if kind == 2:
        number = f"{rng.randint(2, 950)},{rng.randint(0, 999):03d}"
        return (
            f"The town of {place} has a population of about {number} people.",
            [(f"What is the population of {place}?", f"about {number}")],
        )
    if kind == 3:
        a, b = rng.sample(INDUSTRIES, 2)
        return (
            f"For most of its history the local economy depended on {a} and {b}.",
            [(f"What did the local economy of {place} depend on?", f"{a} and {b}")],
        )
    if kind == 4:
        year, who, role = str(rng.randint(1700, 2015)), _person(rng), rng.choice(ROLES)
        return (
            f"In {year}, {who} became the first {role} of {name}.",
            [
                (f"Who became the first {role} of {name}?", who),
                (f"In which year did {who} become {role}?", year),
            ],
        )
    if kind == 5:
        quality, thing = rng.choice(QUALITIES), rng.choice(THINGS)
        return (
            f"Today {name} is best known for its {quality} {thing}.",
            [(f"What is {name} best known for?", f"its {quality} {thing}")],
        )
    if kind == 6:
        who, subject, city = _person(rng), rng.choice(SUBJECTS), _place(rng)
        return (
            f"{who} studied {subject} there before moving to {city}.",
            [(f"What did {who} study?", subject), (f"Where did {who} move to?", city)],
        )
    if kind == 7:
        event, month, year = rng.choice(EVENTS), rng.choice(MONTHS), str(rng.randint(1800, 2010))
        verb = rng.choice(VERBS_PAST)
        return (
            f"After {event} in {month} {year}, the citizens {verb} the {rng.choice(BUILDINGS)}.",
            [(f"When did {event} strike {place}?", f"{month} {year}")],
        )
    tech_a, tech_b = rng.sample(TECH, 2)
    return (
        f"Researchers at {name} compared {tech_a} with {tech_b} and preferred {tech_a} for most projects.",
        [(f"What did the researchers at {name} prefer?", tech_a)],
    )


def _filler(rng: random.Random) -> str:
    """A sentence that answers nothing: paragraphs need bulk, and questions need distractors."""
    a, b, c = rng.sample(NOUNS, 3)
    adj1, adj2 = rng.sample(ADJECTIVES, 2)
    templates = (
        f"The {adj1} streets near the {rng.choice(LANDMARKS)} are full of {a} and {b}, and many {c} "
        f"{rng.choice(VERBS_PAST)} the {adj2} {rng.choice(BUILDINGS)} over the years.",
        f"Local {a} often say that the {rng.choice(LANDMARKS)} looks {adj1} in {rng.choice(MONTHS)}.",
        f"Several {adj1} {rng.choice(THINGS)} were {rng.choice(VERBS_PAST)} by {b} from "
        f"{rng.choice(PLACE_ROOTS) + rng.choice(PLACE_TAILS)}, although few {c} noticed.",
        f"Guides describe the {rng.choice(BUILDINGS)} as {adj1} but {adj2}, especially when {a} gather there.",
    )
    return rng.choice(templates)


def _squad_paragraph(rng: random.Random, long: bool) -> tuple[str, str, list[tuple[str, str, int]]]:
    place, inst = _place(rng), rng.choice(INSTITUTIONS)
    title = f"{place}_{inst.replace(' ', '_')}"
    n_sentences = rng.randint(40, 55) if long else rng.randint(4, 14)
    parts: list[str] = []
    qas: list[tuple[str, str, int]] = []
    offset = 0
    kinds = rng.sample(range(N_FACT_KINDS), N_FACT_KINDS)  # each fact at most once: no contradictions
    for _ in range(n_sentences):
        if rng.random() < 0.35 or not kinds:
            pairs: list[tuple[str, str]] = []
            sentence = _filler(rng)
        else:
            sentence, pairs = _fact(rng, place, inst, kinds.pop())
        for question, answer in pairs:
            qas.append((question, answer, offset + sentence.index(answer)))
        parts.append(sentence)
        offset += len(sentence) + 1
    return title, " ".join(parts), qas


def squad_rows(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    splits: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = {r["id"] for r in SQUAD_TRAIN_HEAD}
    for split, size in SQUAD_SIZES.items():
        rows = [dict(r) for r in SQUAD_TRAIN_HEAD] if split == "train" else []
        while len(rows) < size:
            title, context, qas = _squad_paragraph(rng, long=rng.random() < 0.04)
            rng.shuffle(qas)
            for question, answer, start in qas[: rng.randint(1, 5)]:
                if len(rows) == size:
                    break
                assert context[start : start + len(answer)] == answer
                row_id = _id(rng, 24)
                while row_id in seen:
                    row_id = _id(rng, 24)
                seen.add(row_id)
                n_answers = 1 if split == "train" else rng.randint(1, 3)
                rows.append(
                    {
                        "id": row_id,
                        "title": title,
                        "context": context,
                        "question": question,
                        "answers": {"text": [answer] * n_answers, "answer_start": [start] * n_answers},
                    }
                )
        splits[split] = rows
    return splits


def extra_sentences(rng: random.Random, n: int = 1500) -> list[str]:
    """More text for the tokenizer: the data sets alone repeat their templates too often."""
    out = []
    for _ in range(n):
        place, inst = _place(rng), rng.choice(INSTITUTIONS)
        sentence = (
            _filler(rng) if rng.random() < 0.4 else _fact(rng, place, inst, rng.randrange(N_FACT_KINDS))[0]
        )
        out.append(sentence)
    return out


def generate(seed: int = SEED) -> dict[str, Any]:
    """All synthetic data, from one seed: ``{"swag": splits, "squad": splits, "extra": sentences}``."""
    rng = random.Random(seed)
    return {"swag": swag_rows(rng), "squad": squad_rows(rng), "extra": extra_sentences(rng)}
