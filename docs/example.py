# %% latentrec in a dozen lines: compare, tune with learning curves, train, recommend, similar items.
# Run with LATENTREC_DATA_HOME pointing at the MovieLens files (else ml-latest-small downloads once).
import latentrec as lr
from latentrec.evaluate import evaluate, format_summary, summarize
from latentrec.report import compare_report, tune_report
from latentrec.tuning import grid_search

data = lr.load_movielens("ml-latest-small")                    # ratings + titles/genres
run = evaluate(["biases", "item-knn", "biased-mf", "implicit-als"], data, "5fold", n_jobs=2)
print(format_summary(summarize(run.results)))                   # mean ± std over folds, baselines marked
compare_report(run, data, "out/compare")                        # out/compare/report.html (+ PNGs, CSV, JSON)
train, test = lr.split.random_split(data, 0.2, random_state=0)  # the test part never reaches tuning
search = grid_search("biased-mf", train, "n_factors=32,64 regularization=0.05,0.1", cv=2)
tune_report(search, "out/tune", test_score=-search.best_estimator.score(test))
model = search.best_estimator.fit(data)                         # best setting, refitted on everything
model.save("out/model")                                         # then: latentrec recommend out/model --user 1
ids, scores = model.recommend(1, n=5)
print(data.item_metadata.loc[ids, "title"].tolist())
print(data.item_metadata.loc[model.similar_items(1, n=5)[0], "title"].tolist())  # like Toy Story
