# A WebVTT lesson of MINUTES minutes for timing only (12 cues a minute, about 13 words a cue),
# made of corpus rows and non-questions: python3 tests/bench/make_lesson.py DATA_DIR MINUTES
import csv, random, sys
data, minutes = sys.argv[1], int(sys.argv[2])
rows = [r["text"] for r in csv.DictReader(open(f"{data}/questions.csv", encoding="utf-8"))]
rows += [r["text"] for r in csv.DictReader(open(f"{data}/nonquestions.csv", encoding="utf-8"))]
rnd = random.Random(minutes)
print("WEBVTT\n")
for i in range(12 * minutes):
    t = i * 5.0
    words = []
    while len(words) < 13:
        words += rnd.choice(rows).split()
    stamp = lambda s: f"{int(s // 3600):02d}:{int(s // 60 % 60):02d}:{s % 60:06.3f}"
    print(f"{stamp(t)} --> {stamp(t + 4.5)}\n<v Teacher>{' '.join(words)}\n")
