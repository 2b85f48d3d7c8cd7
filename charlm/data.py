"""Text for the character language models: the homework's dataset class and three corpus sources.

Sources (`load_corpus(source)`):
- "builtin" (default): seeded children's stories generated here, so everything works offline.
- a path: one UTF-8 text file, or a folder whose `*.txt` files are read in sorted order.
- "tinystories": `datasets.load_dataset("roneneldan/TinyStories")`, the homework's corpus, the
  first 10M *characters* of the train split joined with "\\n". (The notebook's
  `"\\n".join(texts[:dataset_size])` slices 10M *stories*, all 2.1M of them, not characters, though
  its comment says characters; we take characters.) "hf:NAME_OR_PATH" loads any dataset with a
  `text` column the same way, including a local `save_to_disk` folder or a JSON-lines file.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch.utils.data import Dataset

TINYSTORIES = "roneneldan/TinyStories"
TINYSTORIES_CHARS = 10_000_000  # the homework's dataset_size
BUILTIN_CHARS = 2_000_000
ALTERNATIVES = ("use --data builtin (the default, offline) or --data PATH (UTF-8 text file or "
                "folder)")


class CharLMDataset(Dataset):
    """The homework's dataset: vocab = sorted characters, chunk i = encoded[i*S : (i+1)*S + 1].

    As in the notebook the encoded text is first cut to a multiple of S + 1; unlike the notebook,
    `__len__` counts only chunks with all S + 1 characters, so every item is a full (x, y) pair.
    `vocab` may be given (e.g. the full corpus's) so a validation split shares the train ids.
    """

    def __init__(self, text: str, seq_length: int = 20, vocab: list[str] | None = None):
        if not isinstance(seq_length, int) or seq_length < 1:
            raise ValueError(f"seq_length must be a positive integer, got {seq_length!r}")
        self.seq_length = seq_length
        self.vocab = sorted(set(text)) if vocab is None else list(vocab)
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        self.itos = {i: ch for i, ch in enumerate(self.vocab)}
        data = encode(text, self.stoi)
        self.data = data[: len(data) - len(data) % (seq_length + 1)]
        self._offsets = torch.arange(seq_length + 1)

    def __len__(self) -> int:
        # chunk i needs positions up to (i+1)*S, so i <= (N-1)/S - 1
        return max(0, (len(self.data) - 1) // self.seq_length)

    def __getitem__(self, idx: int):
        if not 0 <= idx < len(self):
            raise IndexError(f"chunk {idx} out of range [0, {len(self)})")
        chunk = self.data[idx * self.seq_length : (idx + 1) * self.seq_length + 1]
        return chunk[:-1], chunk[1:]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunks `indices` (K,) stacked: x, y each (K, S), as a DataLoader would collate them."""
        chunks = self.data[indices[:, None] * self.seq_length + self._offsets]  # (K, S + 1)
        return chunks[:, :-1], chunks[:, 1:]


def encode(text: str, stoi: dict[str, int]) -> torch.Tensor:
    """Characters -> LongTensor of ids; characters outside `stoi` are named in a ValueError."""
    try:
        return torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    except KeyError:
        missing = sorted(set(text) - set(stoi))
        shown = ", ".join(repr(ch) for ch in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise ValueError(f"characters not in the vocabulary: {shown}{more}") from None


def split_train_val(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The last `val_fraction` of the text is held out (the homework has no validation set)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    cut = len(text) - int(round(len(text) * val_fraction))
    return text[:cut], text[cut:]


def load_corpus(source: str = "builtin", **kw) -> str:
    """Text from "builtin", "tinystories", "hf:NAME_OR_PATH" or a file/folder path.

    Keyword arguments go to the source: `seed`, `n_chars` (builtin); `n_chars`, `split`,
    `cache_dir`, `probe_timeout` (tinystories / hf:); `n_chars` (a path: its first n_chars).
    """
    if source == "builtin":
        return builtin_corpus(**kw)
    if source == "tinystories":
        return load_hf_text(TINYSTORIES, **kw)
    if source.startswith("hf:"):
        return load_hf_text(source[3:], **kw)
    n_chars = kw.pop("n_chars", None)
    if kw:
        raise ValueError(f"a text file or folder takes only n_chars, got {', '.join(kw)}")
    text = read_text_path(source)
    return text if n_chars is None else text[:n_chars]


# ---------------------------------------------------------------- files and folders


def read_text_path(path: str | Path) -> str:
    """A UTF-8 file, or a folder's `*.txt` files (recursive, sorted by path) joined with "\\n"."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise ValueError(f"no *.txt files in folder {path}")
        return "\n".join(_read_utf8(p) for p in files)
    if not path.exists():
        raise FileNotFoundError(
            f"no such corpus {str(path)!r}: give 'builtin', 'tinystories', 'hf:NAME' or a path"
        )
    return _read_utf8(path)


BOM = "\ufeff"  # the UTF-8 byte-order mark some editors put first; not part of the text


def _read_utf8(path: Path) -> str:
    """The file's text; a byte-order mark at its start is dropped, not made a character."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not valid UTF-8 at byte offset {exc.start} (byte 0x{raw[exc.start]:02x})"
        ) from None
    return text[1:] if text.startswith(BOM) else text


# ---------------------------------------------------------------- Hugging Face datasets


def load_hf_text(
    name: str = TINYSTORIES,
    n_chars: int = TINYSTORIES_CHARS,
    split: str = "train",
    cache_dir: str | None = None,
    probe_timeout: float = 5.0,
) -> str:
    """The first `n_chars` characters of `split`'s `text` column, rows joined with "\\n".

    `name` is a Hub id (read from the local HF cache first, without network; downloaded only if
    the Hub answers within `probe_timeout` s), a folder written by `Dataset.save_to_disk`, or a
    local .json/.jsonl/.parquet/.csv file.
    """
    if not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be a positive integer, got {n_chars!r}")
    try:
        import datasets
    except ImportError:
        raise ValueError(f"loading {name!r} needs the `datasets` package; {ALTERNATIVES}") from None
    ds = _open_hf(datasets, name, split, cache_dir, probe_timeout)
    if "text" not in ds.column_names:
        raise ValueError(f"{name}: no 'text' column (columns: {', '.join(ds.column_names)})")
    parts, total = [], -1  # -1: the first row adds no separator
    for batch in ds.select_columns("text").iter(batch_size=1000):
        for story in batch["text"]:
            parts.append(story)
            total += len(story) + 1
            if total >= n_chars:
                return "\n".join(parts)[:n_chars]
    return "\n".join(parts)


def _open_hf(datasets, name, split, cache_dir, probe_timeout):
    path = Path(name)
    if path.is_dir() and (path / "dataset_info.json").exists():  # Dataset.save_to_disk
        ds = datasets.load_from_disk(str(path))
        return ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    if path.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
        if path.suffix not in kind:
            raise ValueError(f"{path}: expected .json, .jsonl, .parquet or .csv")
        return datasets.load_dataset(
            kind[path.suffix], data_files={split: str(path)}, split=split, cache_dir=cache_dir
        )
    try:  # the local HF cache, with the Hub switched off: no request, no retries
        with _hub_offline(datasets):
            return datasets.load_dataset(name, split=split, cache_dir=cache_dir)
    except Exception:  # noqa: BLE001 - not cached (or unreadable): try the Hub below
        pass
    endpoint = datasets.config.HF_ENDPOINT
    if not _reachable(endpoint, probe_timeout):
        raise ValueError(
            f"{name!r} is not in the local Hugging Face cache and {endpoint} did not answer "
            f"within {probe_timeout:g} s; {ALTERNATIVES}"
        )
    return datasets.load_dataset(name, split=split, cache_dir=cache_dir)


@contextlib.contextmanager
def _hub_offline(datasets):
    """Offline mode for one call: `datasets` reads HF_HUB_OFFLINE into module constants at import
    time, so the environment variable cannot be set afterwards; set the constants instead."""
    import huggingface_hub.constants as hub_constants

    targets = [(datasets.config, "HF_HUB_OFFLINE"), (hub_constants, "HF_HUB_OFFLINE")]
    saved = [(mod, attr, getattr(mod, attr)) for mod, attr in targets if hasattr(mod, attr)]
    for mod, attr, _ in saved:
        setattr(mod, attr, True)
    try:
        yield
    finally:
        for mod, attr, value in saved:
            setattr(mod, attr, value)


def _reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` s (DNS included: the
    attempt runs in a daemon thread, since name resolution ignores socket timeouts)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ok = []

    def attempt():
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


# ---------------------------------------------------------------- built-in stories

NAMES = [
    "Lily", "Tim", "Ben", "Mia", "Sam", "Anna", "Max", "Lucy", "Tom", "Sara", "Jack", "Emma",
    "Leo", "Zoe", "Finn", "Ruby", "Noah", "Ella", "Kai", "Rosa", "Oscar", "Ivy", "Hugo", "Nora",
    "Theo", "Maya", "Eli", "Chloe", "Owen", "Grace", "Milo", "Hana", "Ravi", "Luna", "Omar", "Bea",
]
ANIMALS = [
    ("dog", "Spot"), ("cat", "Whiskers"), ("bunny", "Hop"), ("bird", "Chirp"), ("frog", "Ribbit"),
    ("duck", "Quack"), ("fox", "Rusty"), ("bear", "Honey"), ("mouse", "Nibbles"), ("owl", "Hoot"),
    ("turtle", "Shelly"), ("puppy", "Buddy"), ("kitten", "Mittens"), ("lamb", "Fluffy"),
]
THINGS = [
    "ball", "kite", "red hat", "toy car", "blue box", "shiny stone", "little boat", "drum",
    "teddy bear", "book", "green cup", "yellow balloon", "sock", "spoon", "map", "bell", "star",
    "paper crown", "wooden train", "jar of jam", "flower", "shell", "key", "blanket",
]
PLACES = [
    "the park", "the garden", "the beach", "the forest", "the farm", "the pond", "the hill",
    "the kitchen", "the library", "the zoo", "the river", "the big tree", "the playground",
    "the market", "grandma's house", "the school", "the meadow", "the lake",
]
ADJS = [
    "happy", "sad", "brave", "kind", "shy", "curious", "sleepy", "silly", "proud", "scared",
    "gentle", "busy", "tired", "excited", "quiet", "clever", "lonely", "grumpy",
]
WEATHER = [
    "sunny", "rainy", "windy", "cold", "warm", "cloudy", "snowy", "bright", "foggy", "hot",
]
TIMES = ["One day", "Once upon a time", "One morning", "Yesterday", "Last summer",
         "One evening", "On a {w} day", "Long ago"]
RELATIVES = ["mom", "dad", "grandma", "grandpa", "big sister", "little brother", "aunt", "teacher"]
FOODS = ["an apple", "a cookie", "some bread", "a big cake", "soup", "a pear", "some cheese",
         "a sandwich", "berries", "a carrot", "pancakes", "a banana"]
EXCLAIM = ["Wow", "Oh no", "Look", "Hooray", "Oh my", "Yay", "Hmm", "Oops"]


class _Story:
    """One story's cast and draws; methods return sentences."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.hero, self.friend = rng.sample(NAMES, 2)
        self.he = rng.choice(["he", "she"])
        self.his = "his" if self.he == "he" else "her"
        self.animal, self.pet = rng.choice(ANIMALS)
        self.thing = rng.choice(THINGS)
        self.place, self.place2 = rng.sample(PLACES, 2)
        self.adj = rng.choice(ADJS)
        self.rel = rng.choice(RELATIVES)
        self.food = rng.choice(FOODS)

    def c(self, options):
        return self.rng.choice(options)

    def say(self, who, words, verb=None):
        verb = verb or self.c(["said", "asked" if words.endswith("?") else "said", "shouted",
                               "whispered", "replied", "cried", "laughed"])
        if self.rng.random() < 0.5:
            return f'{who} {verb}, "{words}"'
        if who.split()[0] in ("The", "His", "Her"):  # mid-sentence after the quote
            who = who[0].lower() + who[1:]
        return f'"{words}" {verb} {who}.'

    def opening(self):
        when = self.c(TIMES).format(w=self.c(WEATHER))
        return self.c([
            f"{when}, there was a {self.adj} {self.c(['girl', 'boy', 'child'])} named {self.hero}.",
            f"{when}, {self.hero} went to {self.place} with {self.his} {self.rel}.",
            f"{when}, {self.hero} and {self.his} {self.animal} {self.pet} were playing in "
            f"{self.place}.",
            f"{when}, {self.hero} woke up and saw that it was {self.c(WEATHER)} outside.",
        ])

    def detail(self):
        return self.c([
            f"{self.hero} loved {self.his} {self.thing} very much.",
            f"The sky was {self.c(['blue', 'gray', 'pink', 'big and clear'])} and the birds were "
            f"singing.",
            f"{self.pet} the {self.animal} liked to run and jump.",
            f"{self.hero} was {self.c(ADJS)}, but {self.he} did not say anything.",
            f"{self.friend} lived next door and liked to play with {self.hero}.",
            f"There were many {self.c(['trees', 'flowers', 'rocks', 'puddles', 'leaves'])} in "
            f"{self.place}.",
            self.say(self.hero, self.c([f"I like {self.place}!", "This is fun!",
                                        f"Can we stay here all day, {self.rel}?",
                                        f"Look at my {self.thing}!"])),
        ])

    # plot templates: each returns a list of sentences
    def lost_thing(self):
        return [
            f"{self.hero} looked for {self.his} {self.thing}, but it was gone.",
            self.say(self.hero, f"{self.c(EXCLAIM)}! Where is my {self.thing}?"),
            f"{self.hero} looked under the bed and behind the door.",
            f"Then {self.he} went to {self.place2} and asked {self.friend} for help.",
            self.say(self.friend, f"I will help you find it, {self.hero}."),
            f"They looked "
            f"{self.c(['high and low', 'everywhere', 'in the grass', 'by the water'])}.",
            f"At last, {self.pet} the {self.animal} found the {self.thing} "
            f"{self.c(['under a leaf', 'in a hole', 'next to a rock', 'in the mud'])}.",
            self.say(self.hero, f"Thank you, {self.pet}! You are the best {self.animal}!"),
            f"{self.hero} was so happy. {self.he.capitalize()} gave {self.pet} a big hug.",
        ]

    def sharing(self):
        return [
            f"{self.hero} had {self.food} and {self.friend} had nothing to eat.",
            self.say(self.friend, f"I am {self.c(['hungry', 'so hungry', 'very hungry'])}.",
                     "said"),
            f"{self.hero} thought about it for a moment.",
            self.say(self.hero, f"Do you want to share my {self.food.split()[-1]}?"),
            f"{self.friend} smiled and said yes.",
            f"They sat in {self.place} and ate together.",
            f"It tasted {self.c(['good', 'sweet', 'yummy', 'better than ever'])} because they "
            f"shared it.",
            f"From that day on, {self.hero} and {self.friend} were best friends.",
        ]

    def fear(self):
        scary = self.c(["the dark", "a big dog", "the loud thunder", "the deep water",
                        "a tall slide", "a buzzing bee"])
        return [
            f"{self.hero} was afraid of {scary}.",
            self.say(self.hero, f"I do not want to go, {self.rel}. I am scared."),
            self.say(f"{self.his.capitalize()} {self.rel}", f"It is okay to be scared, "
                     f"{self.hero}. I will be with you."),
            f"{self.hero} took a deep breath and held {self.his} {self.rel}'s hand.",
            f"Step by step, {self.he} went closer.",
            "It was not so bad after all.",
            self.say(self.hero, f"{self.c(EXCLAIM)}! I did it!", "shouted"),
            f"{self.hero} felt {self.c(['brave', 'proud', 'strong', 'big'])}.",
        ]

    def broken(self):
        return [
            f"{self.friend} wanted to play with {self.hero}'s {self.thing}.",
            self.say(self.hero, "No, it is mine!"),
            f"They both pulled and pulled, and the {self.thing} broke.",
            f"{self.hero} and {self.friend} were very {self.c(['sad', 'upset', 'quiet'])}.",
            self.say(self.friend, "I am sorry. I should have asked."),
            self.say(self.hero, "I am sorry too. Let us fix it together."),
            f"They found some {self.c(['glue', 'tape', 'string'])} and fixed the {self.thing}.",
            f"Then they took turns and played in {self.place} until the sun went down.",
        ]

    def adventure(self):
        return [
            f"{self.hero} and {self.pet} the {self.animal} went on an adventure to {self.place2}.",
            f"On the way they saw a {self.c(ADJS)} {self.c([a for a, _ in ANIMALS])}.",
            self.say(self.hero, "Hello! What is your name?"),
            self.say("The animal", f"My name is {self.c([p for _, p in ANIMALS])}. I am lost.",
                     "said"),
            f"{self.hero} wanted to help, so {self.he} showed it the way home.",
            f"The path went over a {self.c(['bridge', 'hill', 'log', 'stream'])} and through "
            f"{self.place}.",
            "When they got there, its family was waiting.",
            self.say("The family", "Thank you for bringing our little one home!"),
            f"{self.hero} and {self.pet} walked home, tired and happy.",
        ]

    def helping(self):
        job = self.c(["clean the house", "bake a cake", "plant seeds", "wash the car",
                      "fold the clothes", "paint the fence"])
        return [
            f"{self.hero}'s {self.rel} had to {job}.",
            self.say(self.hero, f"Can I help you, {self.rel}?"),
            self.say(f"{self.his.capitalize()} {self.rel}", f"Yes, {self.hero}. That would be "
                     f"{self.c(['great', 'very kind', 'a big help'])}."),
            f"{self.hero} worked hard. {self.he.capitalize()} did not stop until the job was "
            f"done.",
            f"It was {self.c(['hard', 'messy', 'long', 'fun'])} work, but they did it together.",
            f"After that, they ate {self.food} in {self.place}.",
            self.say(f"The {self.rel}", f"Thank you. You are a {self.c(ADJS)} helper."),
        ]

    def ending(self):
        return self.c([
            f"{self.hero} learned that "
            f"{self.c(['sharing', 'being kind', 'asking for help', 'being brave', 'saying sorry'])}"
            f" makes everyone happy.",
            f"That night, {self.hero} went to bed with a big smile.",
            "The end.",
            "And they all lived happily ever after.",
            f"{self.hero} could not wait to go back to {self.place} the next day.",
        ])


PLOTS = [_Story.lost_thing, _Story.sharing, _Story.fear, _Story.broken, _Story.adventure,
         _Story.helping]


def _story(rng: random.Random) -> str:
    """One story of a few hundred words: opening, details, two or three plots, an ending."""
    s = _Story(rng)
    paragraphs = [[s.opening()] + [s.detail() for _ in range(rng.randint(2, 4))]]
    for plot in rng.sample(PLOTS, rng.randint(2, 3)):
        paragraphs.append(plot(s) + [s.detail() for _ in range(rng.randint(0, 2))])
    paragraphs.append([s.ending()])
    return "\n\n".join(" ".join(p) for p in paragraphs)


def builtin_corpus(seed: int = 0, n_chars: int = BUILTIN_CHARS) -> str:
    """`n_chars` characters of generated children's stories, a function of `seed` alone.

    Paragraphs are separated by "\\n\\n" and stories by "\\n", as the homework joins
    TinyStories; the last story is cut at `n_chars`. Python's `random.Random` sequences are
    stable across versions for these calls.
    """
    if not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be a positive integer, got {n_chars!r}")
    rng = random.Random(seed)
    parts, total = [], 0
    while total < n_chars:
        story = _story(rng)
        parts.append(story)
        total += len(story) + 1
    return "\n".join(parts)[:n_chars]
